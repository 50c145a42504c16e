package orderpage

import (
	"fmt"
	"time"
)

// text is the page's words in one language.
type text struct {
	title, order, where, address, hours, door, lastDay string
	scan, codeIs, keep, cancel, confirmCancel          string
	gone, later, slow, cannot                          string
	signin, card, pin, signinBad, mine, none, signout  string
	shop, search, available, unavailableLabel, pickup  string
	email, placeOrder, orderBad, emailBad, unavailable string
	pickN                                              string // a format: %d books at most
	home, deliverTo, addressLabel, addressBad          string
	states, deliveryStates                             map[string]string
	done                                               map[string]string
	day                                                func(time.Time) string
}

// The template reads the words through these.
func (t text) Title() string         { return t.title }
func (t text) OrderLabel() string    { return t.order }
func (t text) Where() string         { return t.where }
func (t text) Home() string          { return t.home }
func (t text) DeliverTo() string     { return t.deliverTo }
func (t text) AddressLabel() string  { return t.addressLabel }
func (t text) Address() string       { return t.address }
func (t text) Hours() string         { return t.hours }
func (t text) Door() string          { return t.door }
func (t text) LastDayLabel() string  { return t.lastDay }
func (t text) Scan() string          { return t.scan }
func (t text) CodeIs() string        { return t.codeIs }
func (t text) Keep() string          { return t.keep }
func (t text) Cancel() string        { return t.cancel }
func (t text) ConfirmCancel() string { return t.confirmCancel }
func (t text) SignIn() string        { return t.signin }
func (t text) Card() string          { return t.card }
func (t text) PIN() string           { return t.pin }
func (t text) Mine() string          { return t.mine }
func (t text) None() string          { return t.none }
func (t text) SignOut() string       { return t.signout }
func (t text) Shop() string          { return t.shop }
func (t text) Search() string        { return t.search }
func (t text) Available() string     { return t.available }
func (t text) Unavailable() string   { return t.unavailableLabel }
func (t text) Pickup() string        { return t.pickup }
func (t text) Email() string         { return t.email }
func (t text) PlaceOrder() string    { return t.placeOrder }
func (t text) PickUpTo(n int) string { return fmt.Sprintf(t.pickN, n) }

var words = map[string]text{
	"zh": {
		title: "我的取书订单", order: "订单", where: "书柜", address: "地址", hours: "开放时间", door: "柜门", lastDay: "最后取书日",
		scan: "在书柜扫码屏前出示此二维码，或输入取书码。", codeIs: "取书码", keep: "再保留两天", cancel: "取消订单", confirmCancel: "确定取消？",
		gone: "此链接已失效。请查看最新的通知，或联系图书馆。", later: "系统繁忙，请稍后再试。", slow: "尝试次数过多，请稍后再试。",
		cannot: "无法完成此操作（订单状态已变化，或已延期过一次）。",
		signin: "用读者证登录", card: "读者证号", pin: "密码", signinBad: "读者证号或密码不正确，或读者证不可用。", mine: "我的订单", none: "暂无订单。", signout: "退出",
		shop: "借书到柜", search: "搜索书名、作者或 ISBN", available: "可借", unavailableLabel: "已借出或已被预约", pickup: "取书地点",
		email: "电子邮箱（到柜时通知您）", placeOrder: "提交订单", orderBad: "请选择书和取书地点。", emailBad: "电子邮箱格式不正确。",
		unavailable: "所选的书中有已借出或已被预约的，请重新选择。", pickN: "请选择 1 至 %d 本书。",
		home: "送书到家（由送书员送达）", deliverTo: "送达地址", addressLabel: "送书地址（送书到家时填写）", addressBad: "请填写送书地址（不超过 300 字）。",
		deliveryStates: map[string]string{"assigned": "正在备书", "ready": "已打包，等待送书员取走", "picked_up": "已交送书员，正在送往您家",
			"expired": "未能送出，图书已退回图书馆", "retrieved": "未能送出，图书已退回图书馆", "cancelled": "已取消"},
		states: map[string]string{"assigned": "正在配送到书柜", "ready": "已到柜，请取书", "picked_up": "已取走", "expired": "已过期，图书已退回图书馆",
			"retrieved": "已过期，图书已由工作人员取回", "cancelled": "已取消"},
		done: map[string]string{"keep": "已为您多保留两天。", "cancel": "订单已取消。"},
		day:  func(t time.Time) string { return t.Format("2006年1月2日 15:04") },
	},
	"en": {
		title: "My locker order", order: "Order", where: "Locker", address: "Address", hours: "Opening hours", door: "Door", lastDay: "Last day",
		scan: "Show this QR code to the locker's scanner, or type the pickup code.", codeIs: "Pickup code", keep: "Keep it two more days",
		cancel: "Cancel the order", confirmCancel: "Cancel it?",
		gone: "This link no longer works. See your latest notice, or ask the library.", later: "Busy: please try again in a moment.",
		slow: "Too many tries: please wait a moment.", cannot: "That could not be done (the order changed, or it was kept longer once already).",
		signin: "Sign in with your library card", card: "Library card number", pin: "PIN", signinBad: "Wrong card number or PIN, or the card cannot be used.",
		mine: "My orders", none: "No orders.", signout: "Sign out",
		shop: "Order books to a locker", search: "Search title, author or ISBN", available: "Available", unavailableLabel: "On loan or on hold",
		pickup: "Collect at", email: "E-mail (to tell you when they are in)", placeOrder: "Place the order", orderBad: "Choose books and where to collect them.",
		emailBad: "That e-mail address does not look right.", unavailable: "A book you chose is on loan or on hold: choose again.", pickN: "Choose 1 to %d books.",
		home: "Home delivery (a courier brings them)", deliverTo: "Delivered to", addressLabel: "Address (for home delivery)",
		addressBad: "Give the address to bring the books to (up to 300 characters).",
		deliveryStates: map[string]string{"assigned": "Being gathered", "ready": "Packed: waiting for the courier", "picked_up": "With the courier, on its way to you",
			"expired": "Not delivered: the books went back to the library", "retrieved": "Not delivered: the books went back to the library", "cancelled": "Cancelled"},
		states: map[string]string{"assigned": "On its way to the locker", "ready": "Ready: collect it", "picked_up": "Picked up",
			"expired": "Expired: the books went back to the library", "retrieved": "Expired: staff took the books back", "cancelled": "Cancelled"},
		done: map[string]string{"keep": "Kept for you two more days.", "cancel": "The order is cancelled."},
		day:  func(t time.Time) string { return t.Format("Mon 2 Jan 2006, 15:04") },
	},
}

// pageHTML is the page: one column at phone width, no script, nothing
// fetched.
const pageHTML = `<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.W.Title}}</title>
` + pageStyle + `</head>
<body><main>
{{if not .Failed}}<a class="lang" href="?lang={{.Other}}">{{.OtherName}}</a>{{end}}
<h1>{{.W.Title}}</h1>
{{if .Message}}<p class="msg" role="status">{{.Message}}</p>{{end}}
{{if not .Failed}}
<section class="card">
<p class="state {{.State}}">{{.StateText}}</p>
{{if .QR}}<img class="qr" src="{{.QR}}" alt="{{.W.CodeIs}} {{.Code}}">
<p class="code" aria-label="{{.W.CodeIs}}">{{.Code}}</p>
<p>{{.W.Scan}}</p>{{end}}
<dl>
<dt>{{.W.OrderLabel}}</dt><dd>{{.Order}}</dd>
<dt>{{if .Delivery}}{{.W.DeliverTo}}{{else}}{{.W.Where}}{{end}}</dt><dd>{{.Place}}</dd>
{{if .Door}}<dt>{{.W.Door}}</dt><dd>{{.Door}}</dd>{{end}}
{{if .Address}}<dt>{{.W.Address}}</dt><dd>{{.Address}}</dd>{{end}}
{{if .Hours}}<dt>{{.W.Hours}}</dt><dd>{{.Hours}}</dd>{{end}}
{{if .LastDay}}<dt>{{.W.LastDayLabel}}</dt><dd>{{.LastDay}}</dd>{{end}}
</dl>
</section>
{{if .CanKeep}}<form method="post" action="{{.Token}}/keep?lang={{.Lang}}"><input type="hidden" name="k" value="{{.Key}}"><button class="primary">{{.W.Keep}}</button></form>{{end}}
{{if .CanCancel}}<form method="post" action="{{.Token}}/cancel?lang={{.Lang}}"><input type="hidden" name="k" value="{{.Key}}"><button>{{.W.Cancel}}</button></form>{{end}}
{{end}}
</main></body></html>
`

// pageStyle is the pages' one style sheet, inline.
const pageStyle = `<style>
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:28rem;margin:0 auto;padding:1rem}
h1{font-size:1.25rem;margin:.5rem 0 1rem}
.card{background:#fff;border-radius:12px;padding:1rem;margin-bottom:1rem;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.state{font-size:1.1rem;font-weight:600}
.state.ready{color:#0a7d32}.state.assigned{color:#8a5a00}.state.expired,.state.cancelled,.state.retrieved{color:#a12622}
.qr{display:block;margin:1rem auto;width:14rem;height:14rem;image-rendering:pixelated}
.code{text-align:center;font-size:1.6rem;letter-spacing:.2em;font-family:ui-monospace,monospace}
dl{display:grid;grid-template-columns:auto 1fr;gap:.35rem .75rem;margin:0}dt{color:#5b6472}dd{margin:0}
button{width:100%;padding:.8rem;font-size:1rem;border-radius:8px;border:1px solid #c4c9d2;background:#fff;margin-top:.5rem}
button.primary{background:#1456d9;color:#fff;border-color:#1456d9}
.msg{background:#e8f0fe;border-radius:8px;padding:.75rem;margin-bottom:1rem}
.lang{float:right;font-size:.9rem}
</style>`

// signinHTML is the card + PIN form.
const signinHTML = `<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.W.SignIn}}</title>` + pageStyle + `</head>
<body><main>
<a class="lang" href="?lang={{if eq .Lang "zh"}}en">English{{else}}zh">中文{{end}}</a>
<h1>{{.W.SignIn}}</h1>
{{if .Message}}<p class="msg" role="alert">{{.Message}}</p>{{end}}
<form class="card" method="post" action="signin?lang={{.Lang}}">
<label>{{.W.Card}}<br><input name="card" autocomplete="username" inputmode="text" maxlength="64" required style="width:100%;font-size:1.1rem;padding:.5rem"></label><br><br>
<label>{{.W.PIN}}<br><input name="pin" type="password" autocomplete="current-password" maxlength="32" required style="width:100%;font-size:1.1rem;padding:.5rem"></label>
<button class="primary">{{.W.SignIn}}</button>
</form>
</main></body></html>
`

// ordersHTML is a signed-in reader's orders.
const ordersHTML = `<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.W.Mine}}</title>` + pageStyle + `</head>
<body><main>
<h1>{{.W.Mine}}</h1>
{{range .Orders}}<a class="card" style="display:block;color:inherit;text-decoration:none" href="{{.Link}}"><p class="state {{.State}}">{{.StateText}}</p><p>{{.Place}} · {{.ID}}</p></a>
{{else}}<p class="card">{{.W.None}}</p>{{end}}
{{if .Shop}}<p><a href="stock?lang={{.Lang}}">{{.W.Shop}}</a></p>{{end}}
<form method="post" action="signout?lang={{.Lang}}"><button>{{.W.SignOut}}</button></form>
</main></body></html>
`

// shopHTML is the stock: a search, the books found with their
// availability, and the order form.
const shopHTML = `<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.W.Shop}}</title>` + pageStyle + `</head>
<body><main>
<h1>{{.W.Shop}}</h1>
{{if .Message}}<p class="msg" role="alert">{{.Message}}</p>{{end}}
<form method="get" action="stock"><input type="hidden" name="lang" value="{{.Lang}}">
<input name="q" value="{{.Q}}" maxlength="200" placeholder="{{.W.Search}}" aria-label="{{.W.Search}}" style="width:100%;font-size:1.1rem;padding:.5rem">
<button>{{.W.Search}}</button></form>
{{if .Items}}<form method="post" action="order?lang={{.Lang}}">
<p>{{.W.PickUpTo .Max}}</p>
{{range .Items}}<label class="card" style="display:block"><input type="checkbox" name="book" value="{{.Barcode}}"{{if not .Available}} disabled{{end}}>
<b>{{.Title}}</b><br>{{.Author}}{{if .ISBN}} · ISBN {{.ISBN}}{{end}}<br>
<span class="state {{if .Available}}ready{{else}}expired{{end}}">{{if .Available}}{{$.W.Available}}{{else}}{{$.W.Unavailable}}{{end}}</span></label>
{{end}}
<label>{{.W.Pickup}}<br><select name="locker" required style="width:100%;font-size:1.1rem;padding:.5rem">{{range .Places}}<option value="{{.ID}}">{{if .Name}}{{.Name}}{{else}}{{.ID}}{{end}}</option>{{end}}{{if .Delivery}}<option value="delivery">{{.W.Home}}</option>{{end}}</select></label><br><br>
{{if .Delivery}}<label>{{.W.AddressLabel}}<br><textarea name="address" maxlength="300" rows="2" style="width:100%;font-size:1.1rem;padding:.5rem"></textarea></label><br><br>{{end}}
<label>{{.W.Email}}<br><input name="email" type="email" maxlength="254" style="width:100%;font-size:1.1rem;padding:.5rem"></label>
<button class="primary">{{.W.PlaceOrder}}</button>
</form>{{else}}{{if .Searched}}<p class="card">{{.W.None}}</p>{{end}}{{end}}
<p><a href="./?lang={{.Lang}}">{{.W.Mine}}</a></p>
</main></body></html>
`
