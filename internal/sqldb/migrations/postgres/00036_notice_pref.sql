-- notice_pref: how a person wants to hear from carefront. The language of
-- their notices ('' writes both English and Spanish), the channels they
-- chose per kind of notice (kinds they turned email off for; kinds they
-- turned text messages on for), their mobile number for text messages
-- (sealed), and their quiet hours, in minutes after midnight in the
-- clinic's time zone (equal: none). A person with no row gets the
-- defaults: email for every kind, no text messages, no quiet hours.

-- +goose Up
CREATE TABLE notice_pref (
    account_id  TEXT   PRIMARY KEY REFERENCES account (id) ON DELETE CASCADE,
    lang        TEXT   NOT NULL DEFAULT '',
    email_off   TEXT   NOT NULL DEFAULT '',
    sms_on      TEXT   NOT NULL DEFAULT '',
    phone       BYTEA,
    quiet_from  INTEGER NOT NULL DEFAULT 0,
    quiet_to    INTEGER NOT NULL DEFAULT 0,
    updated     BIGINT NOT NULL
);

-- +goose Down
DROP TABLE notice_pref;
