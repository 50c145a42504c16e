// Package brokertest starts real MQTT brokers for tests: a Mosquitto
// process (plain, or TLS with client certificates and an ACL) on a free
// loopback port that can be stopped and started again on the same port,
// or lockerhub's embedded broker; and makes the TLS material they need.
// A missing mosquitto binary fails the test with how to install it; it
// never skips.
package brokertest
