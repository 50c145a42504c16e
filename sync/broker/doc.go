// Package broker is lockerhub's embedded MQTT broker (mochi-mqtt/server):
// the default for demos and pilots, so that a central library needs no
// separate broker until its network outgrows one machine (then it points
// lockerhub at Mosquitto or EMQX instead).
//
// Its ACL follows the protocol's topic layout: a locker (identified by its
// username, or its client id when it gives none) may publish only its own
// {prefix}/{id}/up/... and {prefix}/{id}/status, and read only its own
// down/ topics, its own status and the central status. The central client
// may do anything. With a users file, passwords are checked too.
package broker
