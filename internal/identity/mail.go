package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"carefront/internal/failpoint"
	"carefront/internal/jobs"
	"carefront/internal/notify"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// Mail goes out through the job queue: it is enqueued in the transaction
// of the change that causes it (a code stored, a link made) and sent by a
// job, outside any transaction, retried while the mail server refuses or
// is down. A request never waits for a mail server.

// MailArgs is the job that sends one email. It carries ids: the address is
// read when the mail is sent, and what must not be read from the database
// (a code, a link, an address not yet confirmed) is sealed in Secret,
// bound to this job's message id.
type MailArgs struct {
	Template  string `json:"template"`
	AccountID string `json:"account_id,omitempty"`
	// MessageID is made once, at enqueue: a job that runs again after the
	// mail server took the message sends it with the same Message-ID, so
	// mail clients show one.
	MessageID string `json:"message_id"`
	Secret    []byte `json:"secret,omitempty"`
}

// Kind names the job.
func (MailArgs) Kind() string { return "mail" }

// mailSecret is what a MailArgs.Secret opens to.
type mailSecret struct {
	Code string `json:"code,omitempty"`
	Link string `json:"link,omitempty"`
	To   string `json:"to,omitempty"` // an address other than the account's
	// A visit reminder's date and time, written in each language, and the
	// clinic's name.
	WhenEN string `json:"when_en,omitempty"`
	WhenES string `json:"when_es,omitempty"`
	Place  string `json:"place,omitempty"`
}

// Enqueuer adds jobs in a transaction (jobs.Queue).
type Enqueuer interface {
	EnqueueTx(ctx context.Context, tx *sqldb.Tx, args jobs.Args, o *jobs.EnqueueOptions) (bool, error)
}

// secretBinding ties a sealed secret to its job: moved into a job for
// another template or account (by someone who can write the job table), it
// no longer opens.
func secretBinding(m MailArgs) seal.Binding {
	return seal.Binding{Table: "river_job", Column: "args.secret", Row: m.MessageID + ":" + m.Template + ":" + m.AccountID}
}

// queueMail enqueues one email in tx. With no queue it does nothing (mail
// is off). accountID "" enqueues a job that sends nothing, so that a
// request for an address with no account does the same work as one with.
func (a *Auth) queueMail(ctx context.Context, tx *sqldb.Tx, template, accountID string, secret *mailSecret) error {
	if a.Jobs == nil {
		return nil
	}
	var id [16]byte
	rand.Read(id[:])
	m := MailArgs{Template: template, AccountID: accountID, MessageID: hex.EncodeToString(id[:])}
	if secret != nil {
		if a.Keys == nil {
			return errors.New("identity: mail with a secret needs the sealing keys")
		}
		b, err := json.Marshal(secret)
		if err != nil {
			return err
		}
		if m.Secret, err = a.Keys.Seal(b, secretBinding(m)); err != nil {
			return err
		}
	}
	_, err := a.Jobs.EnqueueTx(ctx, tx, m, nil)
	return err
}

// QueueInvitation queues a caregiver invitation to an address (which
// may have no account yet) in tx: the link is sealed in the job. It says
// nothing of whose record it is.
func (a *Auth) QueueInvitation(ctx context.Context, tx *sqldb.Tx, to, link string) error {
	return a.queueMail(ctx, tx, "caregiver-invite", "", &mailSecret{Link: link, To: to})
}

// QueueVisitGuest queues, in tx, a guest's invitation to a video visit:
// the one-time link (sealed in the job) and the visit's date and time,
// naming neither the patient nor the clinician.
func (a *Auth) QueueVisitGuest(ctx context.Context, tx *sqldb.Tx, to, link string, at time.Time) error {
	zone := a.Zone
	if zone == nil {
		zone = time.UTC
	}
	return a.queueMail(ctx, tx, "visit-guest", "", &mailSecret{Link: link, To: to, WhenEN: When(at, zone, "en"), WhenES: When(at, zone, "es")})
}

// MailHandler is the job handler that sends the mail queueMail enqueued.
func (a *Auth) MailHandler() jobs.Handler { return jobs.Handle(a.deliver) }

func (a *Auth) deliver(ctx context.Context, _ jobs.Job, m MailArgs) error {
	if (m.AccountID == "" && len(m.Secret) == 0) || a.Mail == nil {
		return nil
	}
	acct := &Account{}
	if m.AccountID != "" {
		var err error
		acct, err = a.Store.AccountByID(ctx, m.AccountID)
		if errors.Is(err, ErrNoAccount) {
			return nil // the account is gone: nobody to write to
		}
		if err != nil {
			return err
		}
	}
	var sec mailSecret
	if len(m.Secret) > 0 {
		if a.Keys == nil {
			return errors.New("identity: a sealed mail secret and no keys to open it")
		}
		b, err := a.Keys.Open(m.Secret, secretBinding(m))
		if err != nil {
			return fmt.Errorf("identity: mail %s: secret does not open", m.MessageID)
		}
		if err := json.Unmarshal(b, &sec); err != nil {
			return err
		}
	}
	msg, ok := compose(m.Template, sec)
	if !ok {
		return fmt.Errorf("identity: unknown mail template %q", m.Template)
	}
	kind := noticeKindOf(m.Template)
	prefs := DefaultNoticePrefs()
	if m.AccountID != "" {
		var err error
		if prefs, err = a.Store.NoticePrefs(ctx, m.AccountID); err != nil {
			return err
		}
	}
	if wait := prefs.QuietFor(kind, a.Store.now(), a.Zone); wait > 0 {
		return jobs.Later(wait) // deferred to the end of the quiet hours, not dropped
	}
	msg = inLanguage(msg, prefs.Lang)
	email, sms := prefs.Channels(kind)
	msg.To, msg.MessageID = acct.Email, m.MessageID
	if sec.To != "" {
		msg.To, email, sms = sec.To, true, false // mail to one address: that address, as asked
	}
	// A code or a link goes by email only: a text message is read on a
	// lock screen and kept by the phone company.
	sms = sms && sec.Code == "" && sec.Link == "" && a.SMS != nil
	if email && msg.To != "" {
		failpoint.Hit("mail-before-send")
		if err := a.Mail.Send(ctx, msg); err != nil {
			return err
		}
		failpoint.Hit("mail-after-send")
	}
	if sms {
		// If this fails the job runs again and the email goes again, with
		// the same Message-ID, which mail clients show once.
		if err := a.SMS.SendSMS(ctx, prefs.Phone, msg.Subject+" (carefront)"); err != nil {
			return err
		}
	}
	return nil
}

// inLanguage keeps one language of a bilingual message. Every subject is
// "English / Spanish" and every text is English, a blank line, then
// Spanish (TestEveryMailHasBothLanguages); lang "" keeps both.
func inLanguage(m notify.Message, lang string) notify.Message {
	subj := strings.SplitN(m.Subject, " / ", 2)
	i := strings.LastIndex(m.Text, "\n\n")
	if lang == "" || len(subj) != 2 || i < 0 {
		return m
	}
	if lang == "es" {
		m.Subject, m.Text = subj[1], m.Text[i+2:]
	} else {
		m.Subject, m.Text = subj[0], m.Text[:i]
	}
	return m
}

// compose writes a template's subject and text.
func compose(template string, s mailSecret) (notify.Message, bool) {
	placeES := s.Place
	if s.Place == "" { // a visit whose clinic has no name on record
		s.Place, placeES = "your clinic", "su clínica"
	}
	switch template {
	case "email-code":
		return notify.Message{Subject: "Your carefront sign-in code / Su código de carefront",
			Text: "Your carefront sign-in code is " + s.Code + ". It works once, for 10 minutes. Nobody from your clinic will ask you for it.\n\n" +
				"Su código para iniciar sesión en carefront es " + s.Code + ". Sirve una vez, durante 10 minutos. Nadie de su clínica se lo pedirá."}, true
	case "reset-link":
		return notify.Message{Subject: "Reset your carefront password / Restablecer su contraseña",
			Text: "Open this link in the same browser within 20 minutes to choose a new password. You will also need your authenticator app or a recovery code.\n" +
				s.Link + "\nIf you did not ask for this, ignore this email.\n\n" +
				"Abra este enlace en el mismo navegador antes de 20 minutos para elegir una contraseña nueva. También necesitará su aplicación de autenticación o un código de recuperación.\n" +
				s.Link + "\nSi no lo pidió, ignore este correo."}, true
	case "email-verify-code":
		return notify.Message{Subject: "Confirm your email address for carefront / Confirme su correo para carefront",
			Text: "To finish setting up your carefront account, enter this code on the page where you are setting it up: " + s.Code + "\nIt works for 15 minutes. If you did not set up an account, ignore this email.\n\n" +
				"Para terminar de crear su cuenta de carefront, escriba este código en la página donde la está creando: " + s.Code + ". Sirve durante 15 minutos. Si no creó una cuenta, ignore este correo."}, true
	case "caregiver-invite":
		return notify.Message{Subject: "You are invited to help with a health record / Invitación para ayudar con un expediente de salud",
			Text: "Someone who uses carefront, their clinic's patient portal, has invited you to see parts of their health record and help with their care. To accept, open this link within 14 days and sign in with your own carefront account, or create one:\n" +
				s.Link + "\nIf you were not expecting this, ignore this email: nothing is shared until you accept.\n\n" +
				"Una persona que usa carefront, el portal de pacientes de su clínica, le invitó a ver partes de su expediente de salud y ayudar con su cuidado. Para aceptar, abra este enlace antes de 14 días e inicie sesión con su propia cuenta de carefront, o cree una:\n" +
				s.Link + "\nSi no lo esperaba, ignore este correo: no se comparte nada hasta que usted acepte."}, true
	case "visit-guest":
		return notify.Message{Subject: "You are invited to a video visit on " + s.WhenEN + " / Invitación a una visita por video el " + s.WhenES,
			Text: "You are invited to join a video visit on " + s.WhenEN + ", for example as an interpreter or a family member. At that time, open this link on a phone or computer with a camera and microphone:\n" +
				s.Link + "\nThe link works once, until the visit ends. You will wait until the clinician lets you in. You will not see any health record. Visits are not recorded.\n\n" +
				"Le invitaron a unirse a una visita por video el " + s.WhenES + ", por ejemplo como intérprete o familiar. A esa hora, abra este enlace en un teléfono o computadora con cámara y micrófono:\n" +
				s.Link + "\nEl enlace sirve una vez, hasta que termine la visita. Esperará hasta que el médico le deje entrar. No verá ningún expediente de salud. Las visitas no se graban."}, true
	case "visit-reminder":
		return notify.Message{Subject: "Reminder: your visit on " + s.WhenEN + " / Recordatorio: su cita el " + s.WhenES,
			Text: "You have a visit at " + s.Place + " on " + s.WhenEN + ". Sign in to carefront to see it, check in, or change it.\n\n" +
				"Tiene una cita en " + placeES + " el " + s.WhenES + ". Inicie sesión en carefront para verla, registrar su llegada o cambiarla."}, true
	case "visit-reminder-caregiver":
		return notify.Message{Subject: "Reminder: a visit on " + s.WhenEN + " / Recordatorio: una cita el " + s.WhenES,
			Text: "A visit you help with in carefront is at " + s.Place + " on " + s.WhenEN + ". Sign in to carefront to see it, check in, or change it.\n\n" +
				"Una cita con la que usted ayuda en carefront es en " + placeES + " el " + s.WhenES + ". Inicie sesión en carefront para verla, registrar la llegada o cambiarla."}, true
	case "email-change-code":
		return notify.Message{Subject: "Confirm your new carefront email address / Confirme su nuevo correo",
			Text: "To use this address for your carefront account, enter this code on the page where you asked: " + s.Code + "\nIt works for 15 minutes. If you did not ask for this, ignore this email.\n\n" +
				"Para usar esta dirección en su cuenta de carefront, escriba este código en la página donde lo pidió: " + s.Code + ". Sirve durante 15 minutos. Si no lo pidió, ignore este correo."}, true
	}
	if n, ok := notices[template]; ok {
		return notify.Message{Subject: n[0], Text: n[1]}, true
	}
	return notify.Message{}, false
}
