package telehealth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"
)

// VideoProvider carries a visit's media. The embedded default (nil) is a
// mesh of browsers whose signalling Rooms relays; a provider is a media
// engine the browsers connect to instead. Either way the waiting room is
// the server's: a provider is asked for a participant's media only once
// they are admitted, and told when they must go.
type VideoProvider interface {
	// Join lets an admitted participant into the visit's media and
	// returns what their browser connects with.
	Join(ctx context.Context, appointment string, p MediaParticipant) (*Media, error)
	// Remove takes a participant out (a second device took over).
	Remove(ctx context.Context, appointment, participant string) error
	// End closes the visit's media for everyone.
	End(ctx context.Context, appointment string) error
}

// MediaParticipant is who joins the media.
type MediaParticipant struct {
	Participant string // "Person/ID" or "Guest/ID"
	Name, Role  string
}

// Media is how a browser joins a provider's media.
type Media struct {
	Provider string `json:"provider"`
	URL      string `json:"url"`
	Token    string `json:"token"`
}

// LiveKit is the LiveKit media engine (a LiveKit server beside
// carefront): carefront creates each visit's room through LiveKit's
// server API (Twirp), mints an access token for that room alone (with
// github.com/livekit/protocol/auth) only when a participant is
// admitted, and removes participants and closes the room through the
// same API.
type LiveKit struct {
	URL       string // the LiveKit server, like https://livekit.clinic.example (wss:// for browsers)
	APIKey    string
	APISecret string
	HTTP      *http.Client // nil uses a client with a 10 s timeout
	// TokenTTL is how long a participant's token may be used to connect
	// (LiveKit keeps a connected participant in past it); 2 minutes
	// when 0.
	TokenTTL time.Duration
}

// roomName is the LiveKit room of a visit.
func roomName(appointment string) string { return "visit-" + appointment }

// identity is a participant's LiveKit identity: a hash, so the media
// server never holds an account id.
func identity(participant string) string {
	h := sha256.Sum256([]byte(participant))
	return hex.EncodeToString(h[:12])
}

func (l *LiveKit) client() livekit.RoomService {
	c := l.HTTP
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	base := l.URL
	base = strings.Replace(base, "wss://", "https://", 1)
	base = strings.Replace(base, "ws://", "http://", 1)
	return livekit.NewRoomServiceJSONClient(strings.TrimSuffix(base, "/"), c)
}

// admin is a context carrying a short server API token for one room.
func (l *LiveKit) admin(ctx context.Context, room string, create bool) (context.Context, error) {
	at := auth.NewAccessToken(l.APIKey, l.APISecret).SetValidFor(time.Minute).
		SetVideoGrant(&auth.VideoGrant{RoomAdmin: true, RoomCreate: create, Room: room})
	tok, err := at.ToJWT()
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	return twirp.WithHTTPRequestHeaders(ctx, h)
}

// Join creates the visit's room if needed (at most DefaultMaxAdmitted
// people, closed 5 minutes after it empties) and mints the
// participant's token for it.
func (l *LiveKit) Join(ctx context.Context, appointment string, p MediaParticipant) (*Media, error) {
	room := roomName(appointment)
	actx, err := l.admin(ctx, room, true)
	if err != nil {
		return nil, err
	}
	if _, err := l.client().CreateRoom(actx, &livekit.CreateRoomRequest{Name: room, EmptyTimeout: 300,
		MaxParticipants: DefaultMaxAdmitted}); err != nil {
		return nil, fmt.Errorf("livekit: create room: %w", err)
	}
	ttl := l.TokenTTL
	if ttl == 0 {
		ttl = TokenTTL
	}
	yes, no := true, false
	at := auth.NewAccessToken(l.APIKey, l.APISecret).SetIdentity(identity(p.Participant)).SetName(p.Name).
		SetValidFor(ttl).SetAttributes(map[string]string{"role": p.Role}).
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: room, CanPublish: &yes, CanSubscribe: &yes, CanPublishData: &no})
	tok, err := at.ToJWT()
	if err != nil {
		return nil, err
	}
	url := strings.Replace(strings.Replace(l.URL, "https://", "wss://", 1), "http://", "ws://", 1)
	return &Media{Provider: "livekit", URL: url, Token: tok}, nil
}

// Remove takes a participant out of the room; one not there is no error.
func (l *LiveKit) Remove(ctx context.Context, appointment, participant string) error {
	room := roomName(appointment)
	actx, err := l.admin(ctx, room, false)
	if err != nil {
		return err
	}
	_, err = l.client().RemoveParticipant(actx, &livekit.RoomParticipantIdentity{Room: room, Identity: identity(participant)})
	return notFoundIsFine(err)
}

// End deletes the room: everyone in it is disconnected.
func (l *LiveKit) End(ctx context.Context, appointment string) error {
	room := roomName(appointment)
	actx, err := l.admin(ctx, room, true)
	if err != nil {
		return err
	}
	_, err = l.client().DeleteRoom(actx, &livekit.DeleteRoomRequest{Room: room})
	return notFoundIsFine(err)
}

func notFoundIsFine(err error) error {
	var te twirp.Error
	if errors.As(err, &te) && te.Code() == twirp.NotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("livekit: %w", err)
	}
	return nil
}
