// Package auth owns who may use the central: API tokens and their
// scopes, the audit log of every state-changing request or console
// action, console users and their roles (argon2id passwords), and the
// rate limiter that bounds sign-ins and remote opens — over the part of a
// store it declares (Tx). The HTTP API and the console ask it; it knows
// nothing of them.
package auth
