package stock

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Item is one book of the stock.
type Item struct {
	Barcode string    `json:"barcode"`
	Title   string    `json:"title"`
	Author  string    `json:"author,omitempty"`
	ISBN    string    `json:"isbn,omitempty"` // ISBN-13 (an ISBN-10 is converted)
	Cover   string    `json:"cover,omitempty"`
	Added   time.Time `json:"added"`
}

// Bounds of a list.
const (
	MaxItems   = 100_000
	MaxFile    = 32 << 20
	maxTitle   = 300
	maxAuthor  = 200
	maxCover   = 500
	MaxResults = 100
)

var barcodeRe = regexp.MustCompile(`^[A-Za-z0-9-]{4,32}$`)

// columns are a list's, in its header's order (cover may be left out).
var columns = []string{"barcode", "title", "author", "isbn", "cover"}

// Problems are every broken row of a list, each FILE:LINE: field: what.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "\n") }

// Parse reads a list (UTF-8, a header row naming the columns barcode,
// title, author, isbn and optionally cover, in any order). It returns
// every item, or every problem (name is the file's, for the messages):
// nothing half read.
func Parse(name string, r io.Reader, now time.Time) ([]Item, error) {
	cr := csv.NewReader(io.LimitReader(r, MaxFile+1))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var probs Problems
	bad := func(line int, field, format string, args ...any) {
		if len(probs) < 100 {
			probs = append(probs, fmt.Sprintf("%s:%d: %s: %s", name, line, field, fmt.Sprintf(format, args...)))
		} else if len(probs) == 100 {
			probs = append(probs, fmt.Sprintf("%s: more problems not listed", name))
		}
	}
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s:1: header: %v (want barcode,title,author,isbn,cover)", name, err)
	}
	col := map[string]int{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(columns, h) {
			bad(1, "header", "column %q: known: %s", h, strings.Join(columns, ", "))
			continue
		}
		if _, dup := col[h]; dup {
			bad(1, "header", "column %q given twice", h)
		}
		col[h] = i
	}
	for _, need := range columns[:4] {
		if _, ok := col[need]; !ok {
			bad(1, "header", "column %q missing", need)
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	var items []Item
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// (FieldPos is only for a record read: it panics after an
			// error, as the fuzzer found.)
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad(pe.Line, "row", "%v", pe.Err)
				if errors.Is(pe.Err, csv.ErrBareQuote) || errors.Is(pe.Err, csv.ErrQuote) || errors.Is(pe.Err, csv.ErrFieldCount) {
					continue
				}
			} else {
				bad(0, "row", "%v", err)
			}
			break
		}
		line, _ := cr.FieldPos(0)
		if len(items) >= MaxItems {
			bad(line, "row", "more than %d books", MaxItems)
			break
		}
		get := func(c string) string {
			if i, ok := col[c]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		it := Item{Barcode: get("barcode"), Title: get("title"), Author: get("author"), ISBN: get("isbn"), Cover: get("cover"), Added: now}
		if !barcodeRe.MatchString(it.Barcode) {
			bad(line, "barcode", "%q: want 4 to 32 letters, digits or -", it.Barcode)
		} else if first, dup := seen[it.Barcode]; dup {
			bad(line, "barcode", "%s is on line %d already", it.Barcode, first)
		}
		seen[it.Barcode] = line
		if it.Title == "" || utf8.RuneCountInString(it.Title) > maxTitle || !printable(it.Title) {
			bad(line, "title", "want 1 to %d printable characters", maxTitle)
		}
		if utf8.RuneCountInString(it.Author) > maxAuthor || !printable(it.Author) {
			bad(line, "author", "want up to %d printable characters", maxAuthor)
		}
		if it.ISBN != "" {
			isbn, err := NormalizeISBN(it.ISBN)
			if err != nil {
				bad(line, "isbn", "%q: %v", it.ISBN, err)
			}
			it.ISBN = isbn
		}
		if it.Cover != "" {
			if u, err := url.Parse(it.Cover); err != nil || u.Scheme != "https" || u.Host == "" || len(it.Cover) > maxCover {
				bad(line, "cover", "%q: want an https URL of up to %d characters, or nothing", it.Cover, maxCover)
			}
		}
		items = append(items, it)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no books in it", name)
	}
	return items, nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return utf8.ValidString(s)
}

// NormalizeISBN checks an ISBN-13 or ISBN-10 (hyphens and spaces allowed)
// and returns it as ISBN-13 digits.
func NormalizeISBN(s string) (string, error) {
	d := strings.NewReplacer("-", "", " ", "").Replace(strings.ToUpper(s))
	switch len(d) {
	case 10:
		sum := 0
		for i, c := range d {
			v := int(c - '0')
			if c == 'X' && i == 9 {
				v = 10
			} else if c < '0' || c > '9' {
				return "", errors.New("an ISBN-10 is 9 digits and a digit or X")
			}
			sum += (10 - i) * v
		}
		if sum%11 != 0 {
			return "", errors.New("its check digit is wrong")
		}
		d = "978" + d[:9]
		return d + string(rune('0'+check13(d))), nil
	case 13:
		for _, c := range d {
			if c < '0' || c > '9' {
				return "", errors.New("an ISBN-13 is 13 digits")
			}
		}
		if check13(d[:12]) != int(d[12]-'0') {
			return "", errors.New("its check digit is wrong")
		}
		return d, nil
	}
	return "", errors.New("want 10 or 13 digits")
}

func check13(d string) int {
	sum := 0
	for i, c := range d[:12] {
		w := 1
		if i%2 == 1 {
			w = 3
		}
		sum += w * int(c-'0')
	}
	return (10 - sum%10) % 10
}

// Matches reports whether it answers query: every word of it in the
// title, the author or the ISBN, case folded (Chinese needs no spaces: a
// word is any run between spaces, found within the text).
func (it Item) Matches(query string) bool {
	hay := strings.ToLower(it.Title + "\x00" + it.Author + "\x00" + it.ISBN + "\x00" + it.Barcode)
	words := strings.Fields(strings.ToLower(query))
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		if !strings.Contains(hay, strings.ReplaceAll(w, "-", "")) && !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}
