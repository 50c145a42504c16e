// Package mqttlink connects a locker to the central library over MQTT
// (paho.mqtt.golang), speaking protocol v1 (docs/protocol.md).
//
// Up: a birth status on connect (retained; the MQTT will is the same topic
// with online false), then every outbox event in seq order; an event
// leaves the outbox only when the central library's ack.evt covers it (a
// PUBACK is not enough), so nothing is lost across outages, restarts or
// power cuts, and the central library deduplicates by event id.
//
// Down: signed messages (Ed25519) with order changes, commands and event
// acks, handed by paho's handlers — which never block — to one worker.
// The outbox in bbolt is the durability layer, not paho's store.
package mqttlink
