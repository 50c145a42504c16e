package stock_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lockerd/lockerd/sync/hub/stock"
	"github.com/lockerd/lockerd/sync/hub/stock/stocktest"
)

func TestMemStore(t *testing.T) { stocktest.TestStore(t, stocktest.NewMem()) }

const good = "\ufeffbarcode,title,author,isbn,cover\n" +
	"39000001,围城,钱锺书,978-7-02-009000-6,\n" +
	"39000002,活着,余华,7-5063-3428-3,https://covers.example.org/39000002.jpg\n" +
	"39000003,\"The Three-Body Problem, Part 1\",Liu Cixin,,\n"

func TestParse(t *testing.T) {
	items, err := stock.Parse("stock.csv", strings.NewReader(good), time.Now())
	if err != nil || len(items) != 3 {
		t.Fatalf("%d items: %v", len(items), err)
	}
	if items[0].ISBN != "9787020090006" || items[1].ISBN != "9787506334280" || items[2].Title != "The Three-Body Problem, Part 1" {
		t.Fatalf("items %+v", items)
	}
	// Columns in another order, cover left out.
	if items, err := stock.Parse("s.csv", strings.NewReader("title,barcode,isbn,author\n红楼梦,39000009,,曹雪芹\n"), time.Now()); err != nil || items[0].Barcode != "39000009" {
		t.Fatalf("reordered: %+v %v", items, err)
	}
}

// A list with broken rows imports nothing and says, for each, the file,
// the line, the field and what is wrong.
func TestParseProblems(t *testing.T) {
	for _, tc := range []struct {
		name, csv string
		want      []string
	}{
		{"header", "barcode,title,writer,isbn\n", []string{`stock.csv:1: header: column "writer": known:`, `stock.csv:1: header: column "author" missing`}},
		{"rows", "barcode,title,author,isbn,cover\n" +
			"39000001,围城,钱锺书,9787020090006,\n" +
			"39 1,活着,余华,,\n" +
			"39000001,again,,,\n" +
			"39000004,,nobody,,\n" +
			"39000005,Bad ISBN,,9787020090007,\n" +
			"39000006,Cover,,,http://covers.example.org/x.jpg\n",
			[]string{`stock.csv:3: barcode: "39 1"`, "stock.csv:4: barcode: 39000001 is on line 2 already", "stock.csv:5: title:",
				`stock.csv:6: isbn: "9787020090007": its check digit is wrong`, "stock.csv:7: cover:"}},
		{"quotes", "barcode,title,author,isbn\n39000001,\"open quote,x,\n", []string{"stock.csv:2: row:"}},
		{"empty", "barcode,title,author,isbn\n", []string{"stock.csv: no books in it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := stock.Parse("stock.csv", strings.NewReader(tc.csv), time.Now())
			if err == nil || items != nil {
				t.Fatalf("parsed %d items", len(items))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
}

// An import that fails leaves the stock as it was.
func TestImportAllOrNothing(t *testing.T) {
	s := stock.New(stocktest.NewMem())
	if n, err := s.Import("stock.csv", strings.NewReader(good), time.Now()); err != nil || n != 3 {
		t.Fatalf("import: %d %v", n, err)
	}
	if _, err := s.Import("stock2.csv", strings.NewReader("barcode,title,author,isbn\n39000009,ok,,\nbad barcode,x,,\n"), time.Now()); err == nil {
		t.Fatal("a broken list imported")
	}
	if it, found, _ := s.Item("39000001"); !found || it.Title != "围城" {
		t.Fatal("a failed import touched the stock")
	}
	if _, found, _ := s.Item("39000009"); found {
		t.Fatal("half a list imported")
	}
}

// Search: by title, author, ISBN (with or without hyphens), Chinese text,
// several words all needed.
func TestSearch(t *testing.T) {
	s := stock.New(stocktest.NewMem())
	s.Import("stock.csv", strings.NewReader(good), time.Now())
	for q, want := range map[string][]string{
		"围城":              {"39000001"},
		"钱":               {"39000001"},
		"liu three-body":  {"39000003"},
		"978-7-02-009000": {"39000001"},
		"9787506334280":   {"39000002"},
		"余华 围城":           nil,
		"":                nil,
	} {
		got, err := s.Search(q, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range got {
			ids = append(ids, it.Barcode)
		}
		if strings.Join(ids, ",") != strings.Join(want, ",") {
			t.Errorf("%q: %v, want %v", q, ids, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(good)
	f.Add("barcode,title,author,isbn\n\"a\"\"b\",x,,978\n")
	f.Fuzz(func(t *testing.T, csv string) {
		items, err := stock.Parse("f.csv", strings.NewReader(csv), time.Now())
		if (err == nil) == (items == nil) {
			t.Fatalf("items %d, err %v", len(items), err)
		}
		for _, it := range items {
			if it.Barcode == "" || it.Title == "" {
				t.Fatalf("an item without barcode or title: %+v", it)
			}
		}
	})
}
