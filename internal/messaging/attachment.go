package messaging

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

func init() {
	// pdfcpu would otherwise write a configuration file under the
	// user's config directory on first use.
	model.ConfigPath = "disable"
}

// Attachments: a photo (JPEG, PNG) or a document (PDF) sent with a
// message, up to MaxAttachment bytes. The type is read from the content,
// never from the name or the declared type; images are decoded and encoded
// again, which drops their metadata (a phone photo's place and camera);
// PDFs that could run anything (JavaScript, launch or submit actions,
// forms with scripts) or carry other files are refused, as are encrypted
// ones, which cannot be looked into.
const (
	MaxAttachment = 10 << 20
	// maxPixels bounds a decoded image: a small file can claim a huge
	// picture and take all the memory to decode.
	maxPixels = 50_000_000
)

// Upload is a file a person attaches.
type Upload struct {
	Name string
	Data []byte
}

// Attachment is a checked file, ready to keep: its content type, a safe
// name, and its bytes (images re-encoded).
type Attachment struct {
	ID          string
	Name        string
	ContentType string
	Size        int
	Data        []byte
}

// CheckAttachment checks an upload and returns what is kept of it, or an
// apperr.FieldError (field "attachment") saying what is wrong.
func CheckAttachment(ctx context.Context, u Upload) (*Attachment, error) {
	switch {
	case len(u.Data) == 0:
		return nil, inputError("attachment", "attachment-empty", "the file is empty")
	case len(u.Data) > MaxAttachment:
		return nil, inputError("attachment", "attachment-large", "a file can be up to 10 MB; this one has %.1f MB", float64(len(u.Data))/(1<<20))
	}
	a := &Attachment{ID: newID()}
	var err error
	switch {
	case bytes.HasPrefix(u.Data, []byte{0xFF, 0xD8, 0xFF}):
		a.ContentType, a.Data, err = reencode(u.Data, "jpeg")
	case bytes.HasPrefix(u.Data, []byte("\x89PNG\r\n\x1a\n")):
		a.ContentType, a.Data, err = reencode(u.Data, "png")
	case bytes.HasPrefix(u.Data, []byte("%PDF-")):
		a.ContentType, a.Data, err = "application/pdf", u.Data, checkPDF(ctx, u.Data)
	default:
		return nil, inputError("attachment", "attachment-type", "only photos (JPEG, PNG) and PDF documents can be attached")
	}
	if err != nil {
		return nil, err
	}
	a.Size = len(a.Data)
	a.Name = safeName(u.Name, a.ContentType)
	return a, nil
}

// reencode decodes an image and encodes it again, keeping the picture and
// nothing else of the file.
func reencode(data []byte, format string) (string, []byte, error) {
	cfg, got, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || got != format {
		return "", nil, inputError("attachment", "attachment-broken", "the picture cannot be read")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxPixels {
		return "", nil, inputError("attachment", "attachment-broken", "the picture is too large to read")
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return "", nil, inputError("attachment", "attachment-broken", "the picture cannot be read")
	}
	var out bytes.Buffer
	if format == "jpeg" {
		err = jpeg.Encode(&out, img, &jpeg.Options{Quality: 90})
		return "image/jpeg", out.Bytes(), err
	}
	err = png.Encode(&out, img)
	return "image/png", out.Bytes(), err
}

// checkPDF refuses a PDF that is broken, encrypted, holds JavaScript or
// actions that launch, import or submit, interactive forms that can hold
// scripts (XFA), rich media, or embedded files. Every object of the file is
// looked at, those packed in object streams too.
func checkPDF(ctx context.Context, data []byte) (err error) {
	defer func() {
		// pdfcpu panics on some malformed input, on reading or on decoding
		// a packed object: a file it cannot read is refused.
		if p := recover(); p != nil {
			err = inputError("attachment", "attachment-broken", "the PDF cannot be read")
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	pc, err := readPDF(ctx, data, conf)
	if err != nil {
		return inputError("attachment", "attachment-broken", "the PDF cannot be read")
	}
	if pc.XRefTable.Encrypt != nil {
		return inputError("attachment", "attachment-pdf-encrypted", "the PDF is protected with a password; send it without one")
	}
	for _, e := range pc.XRefTable.Table {
		if e == nil || e.Free {
			continue
		}
		why, err := activeContent(ctx, e.Object, 0)
		if err != nil {
			return inputError("attachment", "attachment-broken", "the PDF cannot be read")
		}
		if why != "" {
			return inputError("attachment", "attachment-pdf-active", "the PDF holds %s, which is not accepted", why)
		}
	}
	return nil
}

// readPDF parses data with pdfcpu, turning its panics on malformed input
// into errors.
func readPDF(ctx context.Context, data []byte, conf *model.Configuration) (pc *model.Context, err error) {
	defer func() {
		if p := recover(); p != nil {
			pc, err = nil, fmt.Errorf("pdf: %v", p)
		}
	}()
	return pdfcpu.ReadWithContext(ctx, bytes.NewReader(data), conf)
}

// activeContent names what in o (and the objects it holds) could run or
// carry another file; "" for nothing. Objects packed in object streams are
// decoded first.
func activeContent(ctx context.Context, o types.Object, depth int) (string, error) {
	if depth > 64 {
		return "objects nested too deep", nil
	}
	switch v := o.(type) {
	case types.LazyObjectStreamObject:
		d, err := v.DecodedObject(ctx)
		if err != nil {
			return "", err
		}
		return activeContent(ctx, d, depth+1)
	case types.StreamDict:
		return activeDict(ctx, v.Dict, depth)
	case *types.StreamDict:
		return activeDict(ctx, v.Dict, depth)
	case types.ObjectStreamDict:
		return activeDict(ctx, v.Dict, depth)
	case *types.ObjectStreamDict:
		return activeDict(ctx, v.Dict, depth)
	case types.Dict:
		return activeDict(ctx, v, depth)
	case types.Array:
		for _, x := range v {
			if why, err := activeContent(ctx, x, depth+1); why != "" || err != nil {
				return why, err
			}
		}
	}
	return "", nil
}

// actions are the action types that could run something, import or send
// data, or open what a PDF carries.
var actions = map[types.Name]string{"JavaScript": "an action that runs JavaScript", "Launch": "an action that launches a program",
	"ImportData": "an action that imports data", "SubmitForm": "an action that sends a form away", "GoToE": "an action that opens an embedded file",
	"RichMediaExecute": "an action that runs rich media", "Rendition": "an action that plays media"}

func activeDict(ctx context.Context, d types.Dict, depth int) (string, error) {
	for k, v := range d {
		switch k {
		case "JS", "JavaScript":
			return "JavaScript", nil
		case "EmbeddedFiles", "EF":
			return "embedded files", nil
		case "XFA":
			return "a form that can run scripts", nil
		case "RichMediaContent", "RichMediaSettings":
			return "rich media", nil
		}
		if name, ok := v.(types.Name); ok {
			if why := actions[name]; k == "S" && why != "" {
				return why, nil
			}
			if (k == "Type" && name == "EmbeddedFile") || (k == "Subtype" && (name == "FileAttachment" || name == "RichMedia" || name == "Screen" || name == "Sound" || name == "Movie")) {
				return "embedded files or media", nil
			}
		}
		if why, err := activeContent(ctx, v, depth+1); why != "" || err != nil {
			return why, err
		}
	}
	return "", nil
}

// safeName keeps the last part of an uploaded file's name, without control
// characters or anything a download header could misread, up to 100
// characters, with the extension its content type has.
func safeName(name, contentType string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || strings.ContainsRune(`"<>:;|?*/`, r) {
			return -1
		}
		return r
	}, strings.TrimSpace(name))
	ext := map[string]string{"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}[contentType]
	base := strings.TrimSuffix(name, path.Ext(name))
	if base == "" || base == "." || !utf8.ValidString(base) {
		base = "attachment"
	}
	if r := []rune(base); len(r) > 100 {
		base = string(r[:100])
	}
	return base + ext
}
