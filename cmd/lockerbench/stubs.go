package main

func benchFootprint(args []string) error { return nil }
func benchFleet(args []string) error     { return nil }
