package main

func benchOutbox(args []string) error    { return nil }
func benchFootprint(args []string) error { return nil }
func benchFleet(args []string) error     { return nil }
