// Package kiosk is the reader's screen: a web page served by lockerd on
// api.listen and shown full-screen by Chromium on the locker's touchscreen.
// It has an on-screen keypad for typing pickup codes, guides the reader to
// the open door (drawn in a grid of the cabinet), explains refusals in plain
// words (never echoing the code), shows returns and a staff view, and says
// when the locker cannot serve. Everything on it is driven by the daemon's
// events and answers; its assets are embedded in the binary, so it needs no
// network and no build step. Strings are in one catalogue per language
// (Simplified Chinese and English).
package kiosk
