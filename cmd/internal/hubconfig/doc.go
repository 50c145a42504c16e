// Package hubconfig is lockerhub's config file (lockerhub serve -config
// FILE, lockerhub validate FILE): strict YAML, every problem as
// FILE:LINE: key: what, like lockerd's (cmd/internal/config decodes both).
package hubconfig
