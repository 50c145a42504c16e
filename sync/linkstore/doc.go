// Package linkstore keeps the MQTT link's durable state (mqttlink.State) in
// its own buckets of lockerd's store file: the parts of a snapshot being
// staged, and the ids of remote commands already handled. One file keeps
// one history (a power cut leaves the locker's state and the link's
// consistent with each other's last commit) and one backup.
package linkstore
