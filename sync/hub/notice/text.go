package notice

import (
	"strings"
	"time"
)

// The words of each notice, by language. A notice carries what the
// reader needs at the locker and nothing else: no card number, no name.
var words = map[string]struct {
	subject               map[string]string
	lead                  map[string]string
	code, link, where     string
	address, hours, until string
	door, books, sep      string
	deliverTo             string
	day                   func(time.Time) string
}{
	"zh": {
		subject: map[string]string{KindReady: "您预约的图书已到柜", KindReminder: "您的图书明天到期，请尽快取书", KindExpired: "您的图书未按时取走，已退回图书馆", KindCancelled: "您的预约已取消",
			KindDispatched: "您的图书已发出，正在送往您家"},
		lead: map[string]string{KindReady: "您预约的图书已放入智能书柜，请凭取书码取书。", KindReminder: "您的图书仍在智能书柜中，明天是最后取书日。",
			KindExpired: "您的图书未在取书期限内取走，已由工作人员取回图书馆。", KindCancelled: "您的预约已取消，无需前往书柜。",
			KindDispatched: "您订的图书已交给送书员，将送到以下地址。"},
		code: "取书码", link: "查看订单", where: "书柜", address: "地址", hours: "开放时间", until: "最后取书日", door: "柜门", books: "图书", sep: "、", deliverTo: "送达地址",
		day: func(t time.Time) string { return t.Format("2006年1月2日 15:04") },
	},
	"en": {
		subject: map[string]string{KindReady: "Your books are ready in the locker", KindReminder: "Your books are waiting: tomorrow is the last day",
			KindExpired: "Your books were not collected and went back to the library", KindCancelled: "Your order was cancelled",
			KindDispatched: "Your books are on their way to you"},
		lead: map[string]string{KindReady: "The books you ordered are in the locker. Collect them with your pickup code.",
			KindReminder:   "Your books are still in the locker; tomorrow is the last day to collect them.",
			KindExpired:    "Your books were not collected in time; staff took them back to the library.",
			KindCancelled:  "Your order was cancelled: there is nothing to collect.",
			KindDispatched: "The books you ordered left with the courier, for the address below."},
		code: "Pickup code", link: "Your order", where: "Locker", address: "Address", hours: "Opening hours", until: "Last day", door: "Door", books: "Books", sep: "; ", deliverTo: "Delivered to",
		day: func(t time.Time) string { return t.Format("Mon 2 Jan 2006, 15:04") },
	},
}

// write is m's subject and text in its language, at the locker's time
// zone as configured (the last day is shown as stored: the hub's local time).
func write(m Message, compartment string) (subject, text string) {
	w, ok := words[m.Lang]
	if !ok {
		w = words[Langs[0]]
	}
	var b strings.Builder
	line := func(label, value string) {
		if value != "" {
			b.WriteString(label + ": " + value + "\n")
		}
	}
	b.WriteString(w.lead[m.Kind] + "\n\n")
	if m.Kind == KindReady || m.Kind == KindReminder {
		line(w.code, m.Code)
		line(w.books, strings.Join(m.Titles, w.sep))
		line(w.where, m.Place)
		line(w.door, compartment)
		line(w.address, m.Address)
		line(w.hours, m.Hours)
		if !m.LastDay.IsZero() {
			line(w.until, w.day(m.LastDay.Local()))
		}
		line(w.link, m.Link)
	} else if m.Kind == KindDispatched {
		line(w.books, strings.Join(m.Titles, w.sep))
		line(w.deliverTo, m.DeliverTo)
		line(w.link, m.Link)
	} else {
		line(w.books, strings.Join(m.Titles, w.sep))
		line(w.where, m.Place)
	}
	b.WriteString("\n" + m.Order + "\n")
	return w.subject[m.Kind], b.String()
}
