// Package loopback decides whether a listen address stays on the machine:
// lockerd's local API, lockerhub's HTTP API and its embedded broker each
// refuse, or require authentication for, anything else.
package loopback
