// Package locale holds carefront's UI text in every supported language
// (go-i18n catalogues embedded in the binary) and picks the language for a
// request. Every string a person reads in the UI comes from here.
//
// Catalogue text is static: it never interpolates PHI into messages that
// could be logged; pages put patient data into templates, not translations.
package locale

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

//go:embed catalog/*.json
var catalogFS embed.FS

// Supported lists the UI languages, the default first.
var Supported = []language.Tag{language.English, language.Spanish}

// Catalog is the loaded set of translations.
type Catalog struct {
	bundle  *i18n.Bundle
	matcher language.Matcher
	ids     map[language.Tag][]string
}

// Load parses the embedded catalogues. It fails at start-up, not at request
// time, if a catalogue is malformed.
func Load() (*Catalog, error) {
	b := i18n.NewBundle(language.English)
	b.RegisterUnmarshalFunc("json", json.Unmarshal)
	c := &Catalog{bundle: b, matcher: language.NewMatcher(Supported), ids: map[language.Tag][]string{}}
	for _, tag := range Supported {
		name := "catalog/" + tag.String() + ".json"
		raw, err := fs.ReadFile(catalogFS, name)
		if err != nil {
			return nil, fmt.Errorf("locale: %s: %w", name, err)
		}
		if _, err := b.ParseMessageFileBytes(raw, name); err != nil {
			return nil, fmt.Errorf("locale: %s: %w", name, err)
		}
		var flat map[string]string
		if err := json.Unmarshal(raw, &flat); err != nil {
			return nil, fmt.Errorf("locale: %s: want a flat object of id to text: %w", name, err)
		}
		for id := range flat {
			c.ids[tag] = append(c.ids[tag], id)
		}
		sort.Strings(c.ids[tag])
	}
	return c, nil
}

// IDs lists the message ids of a language's catalogue, sorted.
func (c *Catalog) IDs(tag language.Tag) []string { return c.ids[tag] }

// Pick returns the supported language for an explicit choice (a ?lang= value
// or cookie, may be empty) and the Accept-Language header.
func (c *Catalog) Pick(choice, acceptLanguage string) language.Tag {
	if choice != "" {
		if t, ok := Parse(choice); ok {
			return t
		}
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return Supported[0]
	}
	_, i, conf := c.matcher.Match(tags...)
	if conf == language.No {
		return Supported[0]
	}
	return Supported[i]
}

// Parse reports the supported language s names exactly ("en", "es").
func Parse(s string) (language.Tag, bool) {
	for _, t := range Supported {
		if strings.EqualFold(s, t.String()) {
			return t, true
		}
	}
	return language.Tag{}, false
}

// Translator renders messages in one language.
type Translator struct {
	Tag language.Tag
	loc *i18n.Localizer
}

// Translator returns a Translator for tag.
func (c *Catalog) Translator(tag language.Tag) *Translator {
	return &Translator{Tag: tag, loc: i18n.NewLocalizer(c.bundle, tag.String())}
}

// T returns message id, with optional template data as key/value pairs. A
// missing message renders as its id, which the catalogue tests prevent.
func (t *Translator) T(id string, kv ...any) string {
	var data map[string]any
	if len(kv) > 1 {
		data = make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			data[fmt.Sprint(kv[i])] = kv[i+1]
		}
	}
	s, err := t.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil {
		return id
	}
	return s
}
