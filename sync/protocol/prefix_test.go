package protocol

import "testing"

// Topic prefixes carry on every broker lockerd supports, a NATS cluster's
// MQTT listener among them.
func TestCheckPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{DefaultPrefix, true},
		{"nb-library/lockers_v2", true},
		{"x", true},
		{"", false},
		{"lockers/v1.1", false}, // NATS maps '/' to '.'
		{"lockers/v 1", false},  // NATS drops the connection
		{"lockers/*", false},    // NATS wildcards
		{"lockers/>", false},    //
		{"lockers/+", false},    // MQTT wildcards
		{"lockers/#", false},    //
		{"/lockers", false},     // empty levels
		{"lockers/", false},     //
		{"lockers//v1", false},  //
		{"宁波/lockers", false},   // ASCII only
		{string(make([]byte, 129)), false},
	} {
		if err := CheckPrefix(tc.prefix); (err == nil) != tc.ok {
			t.Errorf("CheckPrefix(%q) = %v, want ok %v", tc.prefix, err, tc.ok)
		}
	}
}
