package identity

import (
	"context"

	"carefront/internal/notify"
)

// Security notices: short, PHI-free, in English and Spanish (the account
// has no language of its own yet).
var notices = map[string][2]string{
	"locked": {"Your carefront account is locked for 15 minutes",
		"Someone tried to sign in to your account with a wrong password or code many times, so it is locked for 15 minutes.\nIf this was not you, change your password after it unlocks.\n\n" +
			"Su cuenta de carefront está bloqueada por 15 minutos: alguien intentó iniciar sesión muchas veces con una contraseña o un código incorrectos. Si no fue usted, cambie su contraseña cuando se desbloquee."},
	"password-changed": {"Your carefront password was changed",
		"The password of your carefront account was changed, and your other devices were signed out.\nIf you did not do this, call your clinic now.\n\n" +
			"La contraseña de su cuenta de carefront cambió y se cerró la sesión en sus otros dispositivos. Si no fue usted, llame a su clínica ahora."},
	"factor-added": {"A sign-in method was added to your carefront account",
		"A passkey or an authenticator app was added to your carefront account.\nIf you did not do this, call your clinic now.\n\n" +
			"Se agregó una llave de acceso o una aplicación de autenticación a su cuenta de carefront. Si no fue usted, llame a su clínica ahora."},
	"factor-removed": {"A sign-in method was removed from your carefront account",
		"A passkey or an authenticator app was removed from your carefront account, and your other devices were signed out.\nIf you did not do this, call your clinic now.\n\n" +
			"Se quitó una llave de acceso o una aplicación de autenticación de su cuenta de carefront y se cerró la sesión en sus otros dispositivos. Si no fue usted, llame a su clínica ahora."},
	"email-changed": {"The email address of your carefront account was changed",
		"The email address of your carefront account was changed; from now on, carefront writes to the new address.\nIf you did not do this, call your clinic now.\n\n" +
			"La dirección de correo de su cuenta de carefront cambió; desde ahora carefront escribirá a la nueva dirección. Si no fue usted, llame a su clínica ahora."},
	"recovery-code-used": {"A recovery code was used for your carefront account",
		"Someone signed in to your carefront account with one of your recovery codes.\nIf this was not you, change your password and make new recovery codes.\n\n" +
			"Alguien inició sesión en su cuenta de carefront con uno de sus códigos de recuperación. Si no fue usted, cambie su contraseña y cree códigos nuevos."},
	"new-sign-in": {"New sign-in to your carefront account",
		"Your carefront account was signed in to from a device it had not seen before.\nIf this was not you, change your password and sign out the device on the Account security page.\n\n" +
			"Se inició sesión en su cuenta de carefront desde un dispositivo nuevo. Si no fue usted, cambie su contraseña y cierre la sesión de ese dispositivo en la página Seguridad de la cuenta."},
}

// Notice emails a security notice to the account's owner. A notice that
// cannot be sent does not fail the action it reports.
func (a *Auth) Notice(ctx context.Context, acct *Account, event string) {
	n, ok := notices[event]
	if !ok || a.Mail == nil || acct == nil {
		return
	}
	a.Mail.Send(ctx, notify.Message{To: acct.Email, Subject: n[0], Text: n[1]})
}

// SendEmailCode emails a one-time sign-in code.
func (a *Auth) SendEmailCode(ctx context.Context, acct *Account) error {
	if a.Mail == nil {
		return ErrTooManyEmailCodes
	}
	code, err := a.Store.NewEmailCode(ctx, acct.ID)
	if err != nil {
		return err
	}
	return a.Mail.Send(ctx, notify.Message{To: acct.Email, Subject: "Your carefront sign-in code / Su código de carefront",
		Text: "Your carefront sign-in code is " + code + ". It works once, for 10 minutes. Nobody from your clinic will ask you for it.\n\n" +
			"Su código para iniciar sesión en carefront es " + code + ". Sirve una vez, durante 10 minutos. Nadie de su clínica se lo pedirá."})
}
