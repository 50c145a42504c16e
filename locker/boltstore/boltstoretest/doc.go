// Package boltstoretest damages store files the ways the world does, for
// the tests of the store check and recovery.
package boltstoretest
