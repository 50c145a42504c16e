// Package jsonhttp is the one JSON-over-HTTP exchange of the project's
// clients (lockerctl's of lockerd's API, lockerhub's of the hub's): a body
// sent as JSON, a reply read within a bound and decoded, and a non-2xx
// reply turned into an error carrying the server's {"error": ...}.
package jsonhttp
