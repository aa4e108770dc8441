package web

import "net/http"

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
	if s.opts.Demo && s.opts.Outbox != nil {
		mux.HandleFunc("GET /dev/outbox", s.handle(s.showOutbox))
	}
	mux.HandleFunc("/", s.handle(s.showNotFound))
	// Browser forms are refused when another site posts them.
	return http.NewCrossOriginProtection().Handler(recordRoute(mux))
}
