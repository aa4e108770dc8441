package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"carefront/internal/audit"

	"carefront/internal/sqldb"
)

// Notices: short and PHI-free. Each is written in English and Spanish: a
// subject "English / Spanish" and a text of English, a blank line, then
// Spanish; a person who chose a language gets that half (inLanguage).
var notices = map[string][2]string{
	"sharing-invited": {"You invited someone to see your carefront record / Invitó a alguien a ver su expediente",
		"You invited someone to see part of your health record in carefront. Nothing is shared until they accept with their own account. You can see and stop all sharing on your Sharing page.\nIf this was not you, sign in, stop the invitation there, and change your password.\n\n" +
			"Invitó a alguien a ver parte de su expediente de salud en carefront. No se comparte nada hasta que acepte con su propia cuenta. Puede ver y detener todo lo que comparte en su página Compartir. Si no fue usted, inicie sesión, detenga la invitación y cambie su contraseña."},
	"sharing-accepted": {"A caregiver can now see your carefront record / Un cuidador ya puede ver su expediente",
		"Someone you invited accepted, and can now see the parts of your health record you chose. You can stop it at any time on your Sharing page.\n\n" +
			"Una persona que invitó aceptó y ya puede ver las partes de su expediente que eligió. Puede detenerlo en cualquier momento en su página Compartir."},
	"sharing-given-up": {"A caregiver gave up access to your carefront record / Un cuidador renunció al acceso",
		"Someone who could see your health record in carefront gave up that access. Nothing else changed. Your Sharing page shows who can see your record.\n\n" +
			"Una persona que podía ver su expediente de salud en carefront renunció a ese acceso. Nada más cambió. Su página Compartir muestra quién puede ver su expediente."},
	"sharing-ended": {"Your access to a record in carefront has ended / Terminó su acceso a un expediente",
		"Your access to a health record you helped with in carefront has ended. If you think this is a mistake, talk with the person or their clinic.\n\n" +
			"Terminó su acceso a un expediente de salud con el que ayudaba en carefront. Si cree que es un error, hable con la persona o con su clínica."},
	"sharing-ends-adult-caregiver": {"Your access to a record in carefront ends within 30 days / Su acceso a un expediente termina dentro de 30 días",
		"Your access to a health record you help with in carefront ends within the next 30 days, when the person it belongs to comes of age. From then on they decide who sees their record, and they can invite you again from their own Sharing page.\n\n" +
			"Su acceso a un expediente de salud con el que ayuda en carefront termina dentro de los próximos 30 días, cuando la persona a quien pertenece llegue a la mayoría de edad. Desde entonces esa persona decide quién ve su expediente y puede invitarle de nuevo desde su propia página Compartir."},
	"sharing-ends-adult-patient": {"Soon you decide who sees your carefront record / Pronto usted decide quién ve su expediente",
		"Within the next 30 days you come of age, and the access your parent or guardian has to your health record in carefront ends by itself. From then on only you decide who sees it: you can invite anyone you choose again from your Sharing page.\n\n" +
			"Dentro de los próximos 30 días llega a la mayoría de edad y el acceso que su padre, madre o tutor tiene a su expediente de salud en carefront termina por sí solo. Desde entonces solo usted decide quién lo ve: puede volver a invitar a quien quiera desde su página Compartir."},
	"app-connected": {"An app was connected to your carefront record / Se conectó una aplicación a su expediente",
		"An app was given access to part of your health record in carefront, by you or by someone you share your record with. Your Connected apps page shows each app, what it can see, and lets you disconnect it.\nIf you do not know this app, disconnect it there and change your password.\n\n" +
			"Se dio a una aplicación acceso a parte de su expediente de salud en carefront, por usted o por alguien con quien comparte su expediente. Su página Aplicaciones conectadas muestra cada aplicación, lo que puede ver, y le permite desconectarla. Si no conoce esta aplicación, desconéctela allí y cambie su contraseña."},
	"app-disconnected": {"An app was disconnected from your carefront record / Se desconectó una aplicación de su expediente",
		"An app can no longer see your health record in carefront: its access was stopped. Nothing else changed. Your Connected apps page shows the apps that still have access.\n\n" +
			"Una aplicación ya no puede ver su expediente de salud en carefront: se detuvo su acceso. Nada más cambió. Su página Aplicaciones conectadas muestra las aplicaciones que aún tienen acceso."},
	"app-access-ends": {"An app's access to your carefront record ends within 7 days / El acceso de una aplicación termina dentro de 7 días",
		"An app connected to your health record in carefront loses its access within the next 7 days. If you still use it, open the app and connect it again when it asks; otherwise you need not do anything. Your Connected apps page shows when each app's access ends.\n\n" +
			"Una aplicación conectada a su expediente de salud en carefront pierde su acceso dentro de los próximos 7 días. Si todavía la usa, ábrala y conéctela de nuevo cuando se lo pida; si no, no tiene que hacer nada. Su página Aplicaciones conectadas muestra cuándo termina el acceso de cada aplicación."},
	"message-new": {"You have a new message in your carefront portal / Tiene un mensaje nuevo en su portal",
		"You have a new message from your care team in your carefront portal. Sign in to read it.\n\n" +
			"Tiene un mensaje nuevo de su equipo de atención en su portal de carefront. Inicie sesión para leerlo."},
	"message-new-staff": {"A new message is waiting in your carefront inbox / Un mensaje nuevo espera en su bandeja de carefront",
		"A patient's message is waiting in the carefront inbox of a team you answer for. Sign in to read it.\n\n" +
			"Un mensaje de un paciente espera en la bandeja de entrada de carefront de un equipo que usted atiende."},
	"request-answered": {"Your care team answered a request / Su equipo de atención respondió una solicitud",
		"Your care team answered a request you made in your carefront portal. Sign in to see the answer.\n\n" +
			"Su equipo de atención respondió una solicitud que hizo en su portal de carefront. Inicie sesión para ver la respuesta."},
	"request-correction-due": {"A correction request is due within 14 days / Una solicitud de corrección vence en 14 días",
		"A patient in your care asked to correct their record, and the answer is due within 14 days (the law allows 60 days from the request). Sign in to carefront and open Patients' requests to accept or deny it.\n\n" +
			"Un paciente a su cargo pidió corregir su expediente y la respuesta vence dentro de 14 días (la ley permite 60 días desde la solicitud). Inicie sesión en carefront y abra Solicitudes de pacientes para aceptarla o negarla."},
	"request-correction-overdue": {"A correction request is past its deadline / Una solicitud de corrección pasó su fecha límite",
		"A patient in your care asked to correct their record more than 60 days ago and has not been answered: the deadline has passed. Sign in to carefront and open Patients' requests to answer it today.\n\n" +
			"Un paciente a su cargo pidió corregir su expediente hace más de 60 días y no ha recibido respuesta: la fecha límite pasó. Inicie sesión en carefront y abra Solicitudes de pacientes para responder hoy."},
	"locked": {"Your carefront account is locked for 15 minutes / Su cuenta de carefront está bloqueada por 15 minutos",
		"Someone tried to sign in to your account with a wrong password or code many times, so it is locked for 15 minutes.\nIf this was not you, change your password after it unlocks.\n\n" +
			"Su cuenta de carefront está bloqueada por 15 minutos: alguien intentó iniciar sesión muchas veces con una contraseña o un código incorrectos. Si no fue usted, cambie su contraseña cuando se desbloquee."},
	"password-changed": {"Your carefront password was changed / Cambió la contraseña de su cuenta de carefront",
		"The password of your carefront account was changed, and your other devices were signed out.\nIf you did not do this, call your clinic now.\n\n" +
			"La contraseña de su cuenta de carefront cambió y se cerró la sesión en sus otros dispositivos. Si no fue usted, llame a su clínica ahora."},
	"factor-added": {"A sign-in method was added to your carefront account / Se agregó una forma de iniciar sesión a su cuenta",
		"A passkey or an authenticator app was added to your carefront account.\nIf you did not do this, call your clinic now.\n\n" +
			"Se agregó una llave de acceso o una aplicación de autenticación a su cuenta de carefront. Si no fue usted, llame a su clínica ahora."},
	"factor-removed": {"A sign-in method was removed from your carefront account / Se quitó una forma de iniciar sesión de su cuenta",
		"A passkey or an authenticator app was removed from your carefront account, and your other devices were signed out.\nIf you did not do this, call your clinic now.\n\n" +
			"Se quitó una llave de acceso o una aplicación de autenticación de su cuenta de carefront y se cerró la sesión en sus otros dispositivos. Si no fue usted, llame a su clínica ahora."},
	"email-changed": {"The email address of your carefront account was changed / Cambió el correo de su cuenta de carefront",
		"The email address of your carefront account was changed; from now on, carefront writes to the new address.\nIf you did not do this, call your clinic now.\n\n" +
			"La dirección de correo de su cuenta de carefront cambió; desde ahora carefront escribirá a la nueva dirección. Si no fue usted, llame a su clínica ahora."},
	"recovery-code-used": {"A recovery code was used for your carefront account / Se usó un código de recuperación de su cuenta",
		"Someone signed in to your carefront account with one of your recovery codes.\nIf this was not you, change your password and make new recovery codes.\n\n" +
			"Alguien inició sesión en su cuenta de carefront con uno de sus códigos de recuperación. Si no fue usted, cambie su contraseña y cree códigos nuevos."},
	"email-in-use": {"Someone tried to use your email address for another carefront account / Alguien intentó usar su correo en otra cuenta",
		"Someone signed in to another carefront account asked to change its email address to yours. Nothing changed: your address stays with your account, and they were not told it is in use.\nYou need not do anything.\n\n" +
			"Alguien con otra cuenta de carefront pidió cambiar su correo al de usted. No cambió nada: su dirección sigue en su cuenta y no se le dijo a esa persona que está en uso. No tiene que hacer nada."},
	"new-sign-in": {"New sign-in to your carefront account / Nuevo inicio de sesión en su cuenta de carefront",
		"Your carefront account was signed in to from a device it had not seen before.\nIf this was not you, change your password and sign out the device on the Account security page.\n\n" +
			"Se inició sesión en su cuenta de carefront desde un dispositivo nuevo. Si no fue usted, cambie su contraseña y cierre la sesión de ese dispositivo en la página Seguridad de la cuenta."},
}

// Notice queues a security notice to the account's owner, in a transaction
// of its own. A notice that cannot be queued does not fail the action it
// reports.
func (a *Auth) Notice(ctx context.Context, acct *Account, event string) {
	if _, ok := notices[event]; !ok || a.Jobs == nil || acct == nil {
		return
	}
	a.Store.db.Write(ctx, func(tx *sqldb.Tx) error { return a.queueMail(ctx, tx, event, acct.ID, nil) })
}

// QueueNotice queues a notice to an account in tx, the transaction of
// the change it reports (consent's sharing notices).
func (a *Auth) QueueNotice(ctx context.Context, tx *sqldb.Tx, accountID, event string) error {
	if _, ok := notices[event]; !ok {
		return fmt.Errorf("identity: no notice %q", event)
	}
	return a.queueMail(ctx, tx, event, accountID, nil)
}

// QueuePatientNotice queues a notice, in tx, to the account of a
// patient's own record; a patient with no account is not written to.
func (a *Auth) QueuePatientNotice(ctx context.Context, tx *sqldb.Tx, patientID, event string) error {
	var id string
	err := tx.QueryRow(ctx, "SELECT id FROM account WHERE patient_id = ? AND kind = ?", patientID, string(Person)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return a.QueueNotice(ctx, tx, id, event)
}

// QueueVisitReminder queues, in tx, a reminder of a visit to the account
// of the patient's own record. It says the date and time, in the clinic's
// time zone, and the clinic's name: never the reason, the department or
// the clinician. They travel sealed in the job.
func (a *Auth) QueueVisitReminder(ctx context.Context, tx *sqldb.Tx, patientID string, at time.Time, clinic string) error {
	var id string
	err := tx.QueryRow(ctx, "SELECT id FROM account WHERE patient_id = ? AND kind = ?", patientID, string(Person)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return a.queueVisitReminder(ctx, tx, "visit-reminder", id, at, clinic)
}

// QueueVisitReminderTo queues, in tx, a reminder to a caregiver who helps
// with the patient's visits: the date, time and clinic of a visit they
// help with, naming no patient.
func (a *Auth) QueueVisitReminderTo(ctx context.Context, tx *sqldb.Tx, accountID string, at time.Time, clinic string) error {
	return a.queueVisitReminder(ctx, tx, "visit-reminder-caregiver", accountID, at, clinic)
}

func (a *Auth) queueVisitReminder(ctx context.Context, tx *sqldb.Tx, template, accountID string, at time.Time, clinic string) error {
	zone := a.Zone
	if zone == nil {
		zone = time.UTC
	}
	return a.queueMail(ctx, tx, template, accountID, &mailSecret{WhenEN: When(at, zone, "en"), WhenES: When(at, zone, "es"), Place: clinic})
}

var (
	weekdaysES = [...]string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"}
	monthsES   = [...]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"}
)

// When writes a date and time as a notice says it, in English ("Tuesday,
// December 1 at 9:30 AM CST") or Spanish ("martes 1 de diciembre a las
// 9:30 CST").
func When(at time.Time, zone *time.Location, lang string) string {
	t := at.In(zone)
	if lang == "es" {
		return fmt.Sprintf("%s %d de %s a las %s", weekdaysES[t.Weekday()], t.Day(), monthsES[t.Month()-1], t.Format("15:04 MST"))
	}
	return t.Format("Monday, January 2 at 3:04 PM MST")
}

// noticeTx queues a security notice in tx, the change's own transaction.
func (a *Auth) noticeTx(ctx context.Context, tx *sqldb.Tx, acct *Account, event string) error {
	if _, ok := notices[event]; !ok {
		return fmt.Errorf("identity: no notice %q", event)
	}
	return a.queueMail(ctx, tx, event, acct.ID, nil)
}

// SendEmailCode makes a one-time sign-in code, which replaces any earlier
// one, and queues it to the account's address in the same transaction.
func (a *Auth) SendEmailCode(ctx context.Context, acct *Account, addr, sessionHex string) error {
	if a.Jobs == nil {
		return ErrTooManyEmailCodes
	}
	err := a.Store.db.Write(ctx, func(tx *sqldb.Tx) error {
		code, err := a.Store.newEmailCode(ctx, tx, acct.ID)
		if err != nil {
			return err
		}
		if err := a.recordTx(ctx, tx, acct, audit.SubtypeAuthStep, audit.Success, "email-code-sent", addr, sessionHex); err != nil {
			return err
		}
		return a.queueMail(ctx, tx, "email-code", acct.ID, &mailSecret{Code: code})
	})
	if errors.Is(err, ErrTooManyEmailCodes) {
		// Nothing changed: the refusal is recorded on its own.
		if aerr := a.record(ctx, acct, audit.SubtypeAuthStep, audit.MinorFailure, "email-code-refused", addr, sessionHex); aerr != nil {
			return aerr
		}
		return err
	}
	if err != nil {
		return err
	}
	a.chain(ctx)
	return nil
}

// ActivationEvent audits an activation: refused (reason says why; no
// account exists), or done, when it also records the account's creation.
func (a *Auth) ActivationEvent(ctx context.Context, acct *Account, patientID, reason, addr string) error {
	if acct == nil {
		r := audit.Record{Type: audit.TypeUserAuthentication, Subtype: []audit.Coding{audit.SubtypeActivation}, Action: audit.Execute,
			Outcome: audit.MinorFailure, Reason: reason, Address: addr}
		if patientID != "" {
			r.Patient = "Patient/" + patientID
		}
		return a.Audit.Append(ctx, r)
	}
	if err := a.record(ctx, acct, audit.SubtypeActivation, audit.Success, reason, addr); err != nil {
		return err
	}
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeAccountNew},
		Action: audit.Create, Outcome: audit.Success, Reason: "patient-account", User: "Person/" + acct.ID, Address: addr,
		Entities: []audit.Entity{{What: "Person/" + acct.ID}}}
	if acct.PatientID != "" {
		rec.Patient = "Patient/" + acct.PatientID
	} else {
		rec.Reason = "caregiver-account" // an account with no record of its own
	}
	return a.Audit.Append(ctx, rec)
}
