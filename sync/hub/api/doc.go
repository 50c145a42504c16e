// Package api is the central's HTTP API (/v1/, /healthz, /metrics): it
// authenticates each request's bearer token, checks the scope its route
// needs, audits every state-changing request, bounds every body and every
// list, and routes to the capability that owns the request.
//
// Each route group declares the small interface it consumes (Core,
// Alarms, Circulation, Fleet, Auth, Webhooks); *hub.Hub and
// *fleet.Service implement them, and ForHub wires a hub's. The package
// owns no records and no store: its fast tests run on fakes.
package api
