package web

import (
	"net/http"

	"carefront/internal/oauth"
)

// routes lists every route of the portal.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handle(s.showHome))
	mux.HandleFunc("GET /healthz", s.showHealth)
	mux.HandleFunc("GET /readyz", s.showReadiness)
	mux.HandleFunc("GET /static/{version}/{path...}", s.serveStatic)
	if s.opts.Auth != nil {
		mux.HandleFunc("GET /activate", s.handle(s.showActivate))
		mux.HandleFunc("POST /activate", s.handle(s.submitActivate))
		mux.HandleFunc("GET /activate/email", s.handle(s.showVerifyEmail))
		mux.HandleFunc("POST /activate/email", s.handle(s.submitVerifyEmail))
		mux.HandleFunc("POST /activate/email/resend", s.handle(s.submitResendVerifyEmail))
		mux.HandleFunc("GET /signin", s.handle(s.showSignIn))
		mux.HandleFunc("POST /signin", s.handle(s.submitSignIn))
		mux.HandleFunc("GET /signin/verify", s.handle(s.showVerify))
		mux.HandleFunc("POST /signin/verify", s.handle(s.submitVerify))
		mux.HandleFunc("POST /signin/email-code", s.handle(s.submitEmailCode))
		mux.HandleFunc("GET /forgot", s.handle(s.showForgot))
		mux.HandleFunc("POST /forgot", s.handle(s.submitForgot))
		mux.HandleFunc("GET /reset", s.handle(s.showReset))
		mux.HandleFunc("POST /reset", s.handle(s.submitReset))
		mux.HandleFunc("GET /mfa/setup", s.handle(s.showMFASetup))
		mux.HandleFunc("POST /mfa/setup", s.handle(s.submitMFASetup))
		mux.HandleFunc("POST /signout", s.handle(s.submitSignOut))
		mux.HandleFunc("GET /staff/setup", s.handle(s.showStaffSetup))
		mux.HandleFunc("POST /staff/setup", s.handle(s.submitStaffSetup))
		mux.HandleFunc("POST /session/keepalive", s.keepAlive)
		mux.HandleFunc("GET /account/security", s.handle(s.showAccountSecurity))
		mux.HandleFunc("POST /account/sessions/end", s.handle(s.submitEndSession))
		mux.HandleFunc("POST /account/recovery-codes", s.handle(s.submitNewRecoveryCodes))
		mux.HandleFunc("GET /account/password", s.handle(s.showChangePassword))
		mux.HandleFunc("POST /account/password", s.handle(s.submitChangePassword))
		mux.HandleFunc("GET /account/email", s.handle(s.showChangeEmail))
		mux.HandleFunc("POST /account/email", s.handle(s.submitChangeEmail))
		mux.HandleFunc("POST /account/email/confirm", s.handle(s.submitConfirmEmail))
		mux.HandleFunc("POST /account/passkeys/options", s.handle(s.passkeyRegisterOptions))
		mux.HandleFunc("POST /account/passkeys", s.handle(s.passkeyRegister))
		mux.HandleFunc("POST /account/passkeys/remove", s.handle(s.submitRemovePasskey))
		mux.HandleFunc("POST /account/authenticator/remove", s.handle(s.submitRemoveAuthenticator))
		mux.HandleFunc("POST /signin/passkey/options", s.handle(s.passkeySignInOptions))
		mux.HandleFunc("POST /signin/verify/passkey/options", s.handle(s.passkeyVerifyOptions))
		mux.HandleFunc("POST /signin/passkey", s.handle(s.passkeySignIn))
	}
	if s.opts.Auth != nil && s.opts.Views != nil {
		mux.HandleFunc("GET /results", s.handle(s.showResults))
		mux.HandleFunc("POST /results/show", s.handle(s.submitShowNow))
		mux.HandleFunc("GET /results/{code}", s.handle(s.showResultTrend))
		mux.HandleFunc("GET /visits", s.handle(s.showVisits))
		mux.HandleFunc("GET /messages", s.handle(s.showMessages))
		mux.HandleFunc("GET /messages/new", s.handle(s.showNewMessage))
		mux.HandleFunc("POST /messages/new", s.handle(s.submitNewMessage))
		mux.HandleFunc("GET /messages/{id}", s.handle(s.showThread))
		mux.HandleFunc("POST /messages/{id}", s.handle(s.submitReply))
		mux.HandleFunc("GET /messages/{id}/files/{file}", s.handle(s.showFile))
		mux.HandleFunc("GET /staff/inbox", s.handle(s.showInbox))
		mux.HandleFunc("GET /staff/inbox/{id}", s.handle(s.showInboxThread))
		mux.HandleFunc("POST /staff/inbox/{id}", s.handle(s.submitInboxReply))
		mux.HandleFunc("POST /staff/inbox/{id}/assign", s.handle(s.submitInboxAssign))
		mux.HandleFunc("POST /staff/inbox/{id}/done", s.handle(s.submitInboxDone))
		mux.HandleFunc("GET /staff/inbox/{id}/files/{file}", s.handle(s.showInboxFile))
		mux.HandleFunc("GET /medications", s.handle(s.showMedications))
		mux.HandleFunc("GET /summary", s.handle(s.showSummary))
		mux.HandleFunc("GET /documents", s.handle(s.showDocuments))
		mux.HandleFunc("GET /documents/{id}", s.handle(s.showDocument))
		mux.HandleFunc("GET /documents/{id}/file", s.handle(s.downloadDocument))
		mux.HandleFunc("GET /timeline", s.handle(s.showTimeline))
		mux.HandleFunc("GET /profile", s.handle(s.showProfile))
		mux.HandleFunc("GET /record/download", s.handle(s.showRecordDownload))
		mux.HandleFunc("GET /record/download/fhir", s.handle(s.downloadRecordFHIR))
		mux.HandleFunc("GET /record/download/summary", s.handle(s.showRecordPrint))
		mux.HandleFunc("GET /sharing", s.handle(s.showSharing))
		mux.HandleFunc("GET /sharing/access-log", s.handle(s.showAccessLog))
		mux.HandleFunc("GET /api/views/access-log", s.handle(s.apiAccessLog))
		mux.HandleFunc("GET /terms", s.handle(s.showTerms))
		mux.HandleFunc("POST /terms", s.handle(s.submitTerms))
		mux.HandleFunc("POST /sharing/research", s.handle(s.submitResearch))
		mux.HandleFunc("GET /sharing/links", s.handle(s.showLinks))
		mux.HandleFunc("POST /sharing/links", s.handle(s.submitLink))
		mux.HandleFunc("POST /sharing/links/revoke", s.handle(s.submitRevokeLink))
		mux.HandleFunc("POST /shl/{id}", s.shareManifest)
		mux.HandleFunc("OPTIONS /shl/{id}", s.shareManifest)
		mux.HandleFunc("GET /shl/file/{id}", s.shareFile)
		mux.HandleFunc("OPTIONS /shl/file/{id}", s.shareFile)
		mux.HandleFunc("GET /shl/view", s.handle(s.showShareViewer))
		mux.HandleFunc("GET /sharing/caregivers/new", s.handle(s.showInvite))
		mux.HandleFunc("POST /sharing/caregivers/new", s.handle(s.submitInvite))
		mux.HandleFunc("POST /sharing/caregivers/revoke", s.handle(s.submitRevokeCaregiver))
		mux.HandleFunc("POST /sharing/held/leave", s.handle(s.submitLeave))
		mux.HandleFunc("GET /caregiver/accept", s.handle(s.showAccept))
		mux.HandleFunc("POST /caregiver/accept", s.handle(s.submitAccept))
		mux.HandleFunc("GET /settings/results", s.handle(s.showResultSettings))
		mux.HandleFunc("POST /settings/results", s.handle(s.submitResultSettings))

		mux.HandleFunc("GET /api/views/home", s.handle(s.apiHome))
		mux.HandleFunc("GET /api/views/results", s.handle(s.apiResults))
		mux.HandleFunc("GET /api/views/results/{code}", s.handle(s.apiResultTrend))
		mux.HandleFunc("GET /api/views/timeline", s.handle(s.apiTimeline))
		mux.HandleFunc("GET /api/views/medications", s.handle(s.apiMedications))
		mux.HandleFunc("GET /api/views/summary", s.handle(s.apiSummary))
		mux.HandleFunc("GET /api/views/documents", s.handle(s.apiDocuments))
		mux.HandleFunc("GET /api/views/visits", s.handle(s.apiVisits))
		mux.HandleFunc("GET /api/views/profile", s.handle(s.apiProfile))
		mux.HandleFunc("/api/", s.handle(s.showNotFound))
	}
	if a := s.opts.Apps; a != nil && s.opts.Auth != nil && s.opts.Views != nil {
		mux.Handle("/oauth/", a.Clients.CORS("GET, POST", a.OAuth))
		mux.Handle(oauth.PathToken, s.limitTokens(a.OAuth))
		mux.Handle("GET /.well-known/openid-configuration", a.Clients.CORS("GET", a.OAuth))
		mux.Handle("OPTIONS /.well-known/openid-configuration", a.Clients.CORS("GET", a.OAuth))
		mux.Handle(oauth.PathFHIR+"/", a.FHIR)
		mux.HandleFunc("GET "+oauth.PathConsent, s.handle(s.showAuthorize))
		mux.HandleFunc("POST "+oauth.PathConsent, s.handle(s.submitAuthorize))
		mux.HandleFunc("GET /sharing/apps", s.handle(s.showApps))
		mux.HandleFunc("POST /sharing/apps/disconnect", s.handle(s.submitDisconnect))
		mux.HandleFunc("POST /sharing/apps/launch", s.handle(s.submitLaunch))
		if a.Registration {
			mux.Handle("POST "+oauth.PathRegister, s.limitRegister(a.Clients.CORS("POST", http.HandlerFunc(a.Server.Register))))
		}
		mux.HandleFunc("GET "+oauth.PathLogout, s.handle(s.showLogout))
		mux.HandleFunc("POST "+oauth.PathLogout, s.handle(s.submitLogout))
	}
	if s.opts.Demo && s.opts.Outbox != nil {
		mux.HandleFunc("GET /dev/outbox", s.handle(s.showOutbox))
	}
	mux.HandleFunc("/", s.handle(s.showNotFound))
	// Browser forms are refused when another site posts them.
	// The share link endpoints are open to any origin (the spec's CORS)
	// and read no cookie: a recipient's viewer may live anywhere.
	cop := http.NewCrossOriginProtection()
	cop.AddInsecureBypassPattern("POST /shl/{id}")
	// Apps post to the authorization server from their own pages and
	// servers; none of its endpoints reads the portal's session cookie
	// (the code is issued only to the browser holding the ticket the
	// portal's own form gave it).
	for _, p := range []string{oauth.PathAuthorize, oauth.PathToken, oauth.PathRevoke, oauth.PathIntrospect, oauth.PathUserinfo, oauth.PathRegister} {
		cop.AddInsecureBypassPattern("POST " + p)
	}
	return cop.Handler(recordRoute(mux))
}
