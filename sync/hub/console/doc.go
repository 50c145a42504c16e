// Package console is lockerhub's web console for the library's staff:
// sign-in with users and roles (viewer, staff, admin), the fleet, one
// locker drawn as its cabinet, orders, circulation, alarms and the audit
// log, in Chinese and English. Its pages are embedded (no external
// request, works without internet); its JSON calls use a session cookie
// (HttpOnly, SameSite=Strict, Secure over TLS) signed with a key derived
// from the central's signing key, so any replica takes any request, and a
// CSRF token every state-changing call carries.
package console
