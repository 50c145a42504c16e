package sim

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Request injects a fault into the simulated cabinet (POST /v1/sim).
// Actions: jam, unjam, open, close, stick-open, stick-closed, unstick,
// lock-fail, lock-ok, slow (the door opens 5 s after a pulse), fast,
// lose-reply (the lock acts but reports a failure), keep-reply (with
// Door), put and take (a book into or out of an open door with an item
// sensor), and bin-full, bin-empty, offline, online.
type Request struct {
	Action string `json:"action"`
	Door   string `json:"door,omitempty"`
}

// Mount adds the simulator's routes of lockerd's API to mux: GET /v1/sim
// (the doors), POST /v1/sim (a fault, Request), GET /v1/sim/outputs (every
// output change). With hw nil (hardware that is not simulated) each
// answers 404. lockerd mounts them beside the API, behind the same guard:
// a fault opens doors, so it needs the admin token like an open.
func Mount(mux *http.ServeMux, hw *Hardware, log *slog.Logger) {
	notSim := func(w http.ResponseWriter) bool {
		if hw == nil {
			reply(w, http.StatusNotFound, errorBody{"hardware is not simulated"})
		}
		return hw == nil
	}
	mux.HandleFunc("GET /v1/sim", func(w http.ResponseWriter, r *http.Request) {
		if !notSim(w) {
			reply(w, http.StatusOK, hw.State())
		}
	})
	mux.HandleFunc("GET /v1/sim/outputs", func(w http.ResponseWriter, r *http.Request) {
		if !notSim(w) {
			reply(w, http.StatusOK, hw.Outputs())
		}
	})
	mux.HandleFunc("POST /v1/sim", func(w http.ResponseWriter, r *http.Request) {
		if notSim(w) {
			return
		}
		var req Request
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			reply(w, http.StatusBadRequest, errorBody{fmt.Sprintf("bad request body: %v", err)})
			return
		}
		if err := hw.Inject(req.Action, req.Door); err != nil {
			reply(w, http.StatusBadRequest, errorBody{err.Error()})
			return
		}
		if log != nil {
			log.Info("sim fault injected", "action", req.Action, "door", req.Door)
		}
		reply(w, http.StatusOK, hw.State())
	})
}

// errorBody is the API's error reply ({"error": "…"}).
type errorBody struct {
	Error string `json:"error"`
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Inject applies one fault action by name (see Request).
func (h *Hardware) Inject(action, door string) error {
	t, f := true, false
	switch action {
	case "jam":
		return h.Jam(door, true)
	case "unjam":
		return h.Jam(door, false)
	case "lock-fail":
		return h.FailLock(door, true)
	case "lock-ok":
		return h.FailLock(door, false)
	case "slow":
		return h.SlowDoor(door, 5*time.Second)
	case "fast":
		return h.SlowDoor(door, 0)
	case "lose-reply":
		return h.LoseLockReply(door, true)
	case "keep-reply":
		return h.LoseLockReply(door, false)
	case "open":
		return h.Open(door)
	case "close":
		return h.CloseDoor(door)
	case "stick-open":
		return h.StickSensor(door, &t)
	case "stick-closed":
		return h.StickSensor(door, &f)
	case "unstick":
		return h.StickSensor(door, nil)
	case "put":
		return h.Put(door, 1)
	case "take":
		return h.Put(door, -1<<20)
	case "bin-full":
		return h.SetBinFull(true)
	case "bin-empty":
		return h.SetBinFull(false)
	case "offline":
		return h.SetOffline(true)
	case "online":
		return h.SetOffline(false)
	}
	return fmt.Errorf("unknown action %q", action)
}

// Call is the part of an API client Remote uses (lockerd's httpapi.Client).
type Call func(method, path string, body, into any) error

// Remote injects action into the simulator of a running lockerd through
// its API; an empty action reads the doors' states.
func Remote(do Call, action, door string) ([]DoorState, error) {
	var st []DoorState
	if action == "" {
		return st, do("GET", "/v1/sim", nil, &st)
	}
	return st, do("POST", "/v1/sim", Request{Action: action, Door: door}, &st)
}
