package telehealth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/twitchtv/twirp"

	"carefront/internal/audit"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
	"carefront/internal/telehealth"
)

const lkKey, lkSecret = "APIcarefront", "a LiveKit API secret of 32 bytes!"

type grantKey struct{}

// fakeLiveKit is LiveKit's room service API (the real Twirp server from
// livekit/protocol) over a fake: it checks each call's API token as
// LiveKit does and records what carefront asked.
type fakeLiveKit struct {
	livekit.RoomService // calls not faked panic
	mu                  sync.Mutex
	calls               []string
}

func (f *fakeLiveKit) record(ctx context.Context, call, room string) error {
	g, _ := ctx.Value(grantKey{}).(*auth.ClaimGrants)
	if g == nil || g.Video == nil || !g.Video.RoomAdmin || g.Video.Room != room {
		return twirp.NewError(twirp.Unauthenticated, "no admin grant for "+room)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call+" "+room)
	return nil
}

func (f *fakeLiveKit) CreateRoom(ctx context.Context, req *livekit.CreateRoomRequest) (*livekit.Room, error) {
	if req.MaxParticipants != telehealth.DefaultMaxAdmitted {
		return nil, twirp.InvalidArgumentError("max_participants", "want 4")
	}
	return &livekit.Room{Name: req.Name}, f.record(ctx, "create", req.Name)
}

func (f *fakeLiveKit) DeleteRoom(ctx context.Context, req *livekit.DeleteRoomRequest) (*livekit.DeleteRoomResponse, error) {
	return &livekit.DeleteRoomResponse{}, f.record(ctx, "delete", req.Room)
}

func (f *fakeLiveKit) RemoveParticipant(ctx context.Context, req *livekit.RoomParticipantIdentity) (*livekit.RemoveParticipantResponse, error) {
	if err := f.record(ctx, "remove "+req.Identity, req.Room); err != nil {
		return nil, err
	}
	return nil, twirp.NotFoundError("participant not found") // already gone
}

func (f *fakeLiveKit) taken() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func startFakeLiveKit(t *testing.T) (*fakeLiveKit, *httptest.Server) {
	f := &fakeLiveKit{}
	twirpSrv := livekit.NewRoomServiceServer(f)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if v, err := auth.ParseAPIToken(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")); err == nil && v.APIKey() == lkKey {
			if _, g, err := v.Verify(lkSecret); err == nil {
				ctx = context.WithValue(ctx, grantKey{}, g)
			}
		}
		twirpSrv.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

// joinGrant reads a participant's LiveKit token as LiveKit would.
func joinGrant(t *testing.T, m map[string]any) *auth.ClaimGrants {
	t.Helper()
	media, _ := m["media"].(map[string]any)
	if media == nil || media["provider"] != "livekit" {
		t.Fatalf("no LiveKit media in %v", m)
	}
	v, err := auth.ParseAPIToken(media["token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	_, g, err := v.Verify(lkSecret)
	if err != nil {
		t.Fatalf("the token does not verify with the API secret: %v", err)
	}
	return g
}

// TestLiveKitProvider: with LiveKit as the media engine, nobody gets a
// LiveKit token before they are admitted; the clinician's and then the
// admitted patient's tokens join that visit's room alone (no admin
// rights, no data channel); the room is created through LiveKit's server
// API with an admin token for it, a participant who moved to another
// device is removed, and ending the visit deletes the room.
func TestLiveKitProvider(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		fake, lk := startFakeLiveKit(t)
		keys, _ := seal.Generate()
		sig, _ := audit.NewSigner(make([]byte, 32))
		aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
		t.Cleanup(func() { aw.Close(context.Background()) })
		in := newInstance(t, db, keys, aw)
		in.rooms.Provider = &telehealth.LiveKit{URL: lk.URL, APIKey: lkKey, APISecret: lkSecret}

		maria := in.connect(t, "maria")
		if w := maria.expect("welcome"); w["media"] != nil {
			t.Fatalf("a waiting patient got media: %v", w)
		}
		patel := in.connect(t, "patel")
		patel.expect("welcome")
		g := joinGrant(t, patel.expect("admitted"))
		if g.Video.Room != "visit-appt-1" || !g.Video.RoomJoin || g.Video.RoomAdmin || g.Video.RoomCreate || g.Name != "Dr. Patel" || g.Identity == "" || strings.Contains(g.Identity, "acct") {
			t.Fatalf("the clinician's grant: %+v %+v", g, g.Video)
		}
		if g.Video.CanPublishData == nil || *g.Video.CanPublishData {
			t.Error("the token allows the data channel")
		}
		mariaID := patel.expect("waiting")["list"].([]any)[0].(map[string]any)["id"]
		maria.quiet("notice")
		patel.send(map[string]any{"type": "admit", "who": mariaID})
		mg := joinGrant(t, maria.expect("admitted"))
		if mg.Video.Room != "visit-appt-1" || mg.Identity == g.Identity || mg.Name != "Maria" {
			t.Fatalf("Maria's grant: %+v", mg)
		}
		maria2 := in.connect(t, "maria") // her phone
		maria.expect("moved")
		maria2.expect("welcome")
		maria2.expect("admitted")
		patel.send(map[string]any{"type": "end"})
		maria2.expect("ended", "peer-joined", "peer-left")
		patel.expect("ended", "peer-joined", "peer-left", "waiting") // told last, after the room is closed

		calls := strings.Join(fake.taken(), "\n")
		for _, want := range []string{"create visit-appt-1", "remove " + mg.Identity + " visit-appt-1", "delete visit-appt-1"} {
			if !strings.Contains(calls, want) {
				t.Errorf("LiveKit was not asked to %s:\n%s", want, calls)
			}
		}
	})
}
