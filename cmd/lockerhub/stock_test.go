package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lockerhub stock import: a list with broken rows changes nothing and
// names each FILE:LINE: field; a good one replaces the stock, which
// lockerhub stock search finds in Chinese and by ISBN.
func TestStockImportAndSearch(t *testing.T) {
	_, api, dir := runHub(t)
	good := filepath.Join(dir, "stock.csv")
	os.WriteFile(good, []byte("barcode,title,author,isbn,cover\n39000001,围城,钱锺书,978-7-02-009000-6,\n39000002,活着,余华,,\n"), 0o600)
	broken := filepath.Join(dir, "stock-2.csv")
	os.WriteFile(broken, []byte("barcode,title,author,isbn\n39000003,红楼梦,曹雪芹,\n3900 0004,西游记,吴承恩,\n39000005,,nobody,\n"), 0o600)
	if out, errw, code := cli(t, "stock", "import", "-hub", api, good); code != 0 || !strings.Contains(out, "imported 2 books") {
		t.Fatalf("import: %s %s", out, errw)
	}
	_, errw, code := cli(t, "stock", "import", "-hub", api, broken)
	if code == 0 || !strings.Contains(errw, "stock-2.csv:3: barcode:") || !strings.Contains(errw, "stock-2.csv:4: title:") {
		t.Fatalf("a broken list: %d %s", code, errw)
	}
	if out, _, _ := cli(t, "stock", "search", "-hub", api, "围城"); !strings.Contains(out, "39000001") || strings.Contains(out, "39000002") {
		t.Fatalf("search 围城:\n%s", out)
	}
	if out, _, _ := cli(t, "stock", "search", "-hub", api, "红楼梦"); strings.Contains(out, "39000003") {
		t.Fatal("a book of the broken list is in the stock")
	}
	if out, _, _ := cli(t, "stock", "search", "-hub", api, "9787020090006"); !strings.Contains(out, "39000001") {
		t.Fatalf("search by ISBN:\n%s", out)
	}
}
