// lockerhub stock import|search: the books readers may order to a locker.

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

func cmdStockImport(k *call) error {
	if len(k.pos) != 1 {
		return fmt.Errorf("want: %s FILE.csv", k.cmd)
	}
	f, err := os.Open(k.pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := k.c.ImportStock(filepath.Base(k.pos[0]), f)
	if err != nil {
		return fmt.Errorf("nothing imported:\n%w", err)
	}
	fmt.Fprintf(k.out, "imported %d books: the stock is this list now\n", n)
	return nil
}

func cmdStockSearch(k *call) error {
	items, err := k.c.SearchStock(strings.Join(k.pos, " "))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(k.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BARCODE\tTITLE\tAUTHOR\tISBN")
	for _, it := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.Barcode, it.Title, it.Author, it.ISBN)
	}
	return tw.Flush()
}
