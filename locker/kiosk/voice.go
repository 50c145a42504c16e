package kiosk

// The kiosk's spoken prompts (accessibility mode): audio files made from
// the catalogues by espeak-ng at build time (make voice, the voicegen
// command) and embedded with the page's assets.

// VoiceKeys are the catalogue keys spoken in accessibility mode: every
// screen's prompt (welcome, door open, refused and why, locked out,
// return accepted, ...). A door is named by spelling its id between
// voice.door_prefix and voice.door_suffix.
var VoiceKeys = []string{
	"welcome.title", "a11y.on", "thanks", "door.reminder", "voice.door_prefix", "voice.door_suffix",
	"refused.unknown", "refused.expired", "refused.cancelled", "refused.not_ready", "refused.locked_out",
	"refused.jammed", "refused.busy", "refused.store", "refused.error", "refused.wrong_pin",
	"refused.card_refused", "refused.use_code", "refused.no_card",
	"return.title", "return.accepted", "return.pattern", "return.bin_full",
	"pin.title", "items.left_voice", "oos.title",
}

// VoiceChars are spoken one by one to name a door (A03: "A", "0", "3").
const VoiceChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// VoiceManifest is voice/manifest.json: each language's clips by key.
type VoiceManifest struct {
	Version int                             `json:"version"`
	Langs   map[string]map[string]VoiceClip `json:"langs"`
}

// VoiceClip is one prompt: its file under assets/voice, and the SHA-256
// of the text it was made from (a changed text needs make voice).
type VoiceClip struct {
	File       string `json:"file"`
	TextSHA256 string `json:"text_sha256"`
}
