package messaging_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/messaging"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// photo is a small picture, as JPEG or PNG.
func photo(t *testing.T, format string) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := range 40 {
		img.Set(x, x%30, color.RGBA{200, 30, 30, 255})
	}
	var b bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withEXIF puts an EXIF segment naming a place right after a JPEG's start,
// as a phone camera does.
func withEXIF(j []byte) []byte {
	payload := []byte("Exif\x00\x00GPSLatitude 41.8781 N GPSLongitude 87.6298 W")
	seg := append([]byte{0xFF, 0xE1, 0, 0}, payload...)
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(append([]byte{0xFF, 0xD8}, seg...), j[2:]...)
}

// withText puts a tEXt chunk before a PNG's end.
func withText(p []byte, text string) []byte {
	data := []byte("Comment\x00" + text)
	chunk := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(chunk, uint32(len(data)))
	copy(chunk[4:], "tEXt")
	chunk = append(chunk, data...)
	crc := crc32.ChecksumIEEE(chunk[4:])
	chunk = binary.BigEndian.AppendUint32(chunk, crc)
	end := len(p) - 12 // IEND
	return append(append(append([]byte{}, p[:end]...), chunk...), p[end:]...)
}

// pdf writes a PDF of the given objects (1 is the catalog) with a correct
// cross-reference table.
func pdf(objects ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n")
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

const (
	pages = "<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
	page  = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"
)

// packed writes a PDF whose last object (after the catalog, pages and page)
// is packed, Flate-compressed, in an object stream, with a cross-reference
// stream, as PDF 1.5 writers do: a plain search of the bytes finds nothing
// of it.
func packed(t *testing.T, catalog, hidden string) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n")
	offsets := map[int]int{}
	for i, o := range []string{catalog, pages, page} {
		offsets[i+1] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	header := "4 0 "
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte(header + hidden))
	zw.Close()
	offsets[5] = b.Len()
	fmt.Fprintf(&b, "5 0 obj\n<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n", len(header), z.Len())
	b.Write(z.Bytes())
	b.WriteString("\nendstream\nendobj\n")
	offsets[6] = b.Len()
	var x bytes.Buffer
	entry := func(typ byte, f2 uint32, f3 uint16) {
		x.WriteByte(typ)
		x.Write(binary.BigEndian.AppendUint32(nil, f2))
		x.Write(binary.BigEndian.AppendUint16(nil, f3))
	}
	entry(0, 0, 65535)
	for i := 1; i <= 3; i++ {
		entry(1, uint32(offsets[i]), 0)
	}
	entry(2, 5, 0) // object 4: the first in object stream 5
	entry(1, uint32(offsets[5]), 0)
	entry(1, uint32(offsets[6]), 0)
	fmt.Fprintf(&b, "6 0 obj\n<< /Type /XRef /Size 7 /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n", x.Len())
	b.Write(x.Bytes())
	fmt.Fprintf(&b, "\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n", offsets[6])
	return b.Bytes()
}

// TestAttachmentsAreCheckedByContent: photos are kept as pictures only
// (their EXIF place and text chunks dropped); clean PDFs are kept as they
// are; a renamed program, an empty or oversized file, a broken picture,
// and PDFs with JavaScript (also packed in compressed object streams),
// launch actions or embedded files are refused with a reason.
func TestAttachmentsAreCheckedByContent(t *testing.T) {
	ctx := context.Background()
	jpg := withEXIF(photo(t, "jpeg"))
	a, err := messaging.CheckAttachment(ctx, messaging.Upload{Name: `C:\Users\maria\knee photo.JPG`, Data: jpg})
	if err != nil {
		t.Fatal(err)
	}
	if a.ContentType != "image/jpeg" || a.Name != "knee photo.jpg" || bytes.Contains(a.Data, []byte("GPSLatitude")) || bytes.Contains(a.Data, []byte("Exif")) {
		t.Errorf("JPEG kept as %s %q, metadata gone: %v", a.ContentType, a.Name, !bytes.Contains(a.Data, []byte("GPSLatitude")))
	}
	if _, err := jpeg.Decode(bytes.NewReader(a.Data)); err != nil {
		t.Errorf("the kept JPEG is not a picture: %v", err)
	}
	pngData := withText(photo(t, "png"), "Maria Ortega, DOB 1961-04-02")
	if _, err := png.Decode(bytes.NewReader(pngData)); err != nil {
		t.Fatalf("test PNG with text: %v", err)
	}
	p, err := messaging.CheckAttachment(ctx, messaging.Upload{Name: "../../etc/passwd\x00.png", Data: pngData})
	if err != nil {
		t.Fatal(err)
	}
	if p.ContentType != "image/png" || bytes.Contains(p.Data, []byte("Maria")) || strings.ContainsAny(p.Name, "/\x00") {
		t.Errorf("PNG kept as %s %q with its text: %v", p.ContentType, p.Name, bytes.Contains(p.Data, []byte("Maria")))
	}
	clean := pdf("<< /Type /Catalog /Pages 2 0 R >>", pages, page)
	d, err := messaging.CheckAttachment(ctx, messaging.Upload{Name: "lab letter.pdf", Data: clean})
	if err != nil || d.ContentType != "application/pdf" || !bytes.Equal(d.Data, clean) || d.Name != "lab letter.pdf" {
		t.Errorf("a clean PDF: %+v, %v", d, err)
	}
	cleanPacked := packed(t, "<< /Type /Catalog /Pages 2 0 R /PageLabels 4 0 R >>", "<< /Nums [0 << /S /D >>] >>")
	if d, err := messaging.CheckAttachment(ctx, messaging.Upload{Name: "packed.pdf", Data: cleanPacked}); err != nil || d == nil {
		t.Errorf("a clean PDF with object streams: %v", err)
	}

	js := pdf("<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>", pages, page, "<< /S /JavaScript /JS (app.alert\\(1\\)) >>")
	packedJS := packed(t, "<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>", "<< /S /JavaScript /JS (app.alert\\(1\\)) >>")
	if bytes.Contains(packedJS, []byte("JavaScript")) {
		t.Fatal("the packed PDF shows its JavaScript in the clear: the test proves nothing")
	}
	elf := append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 200)...)
	for _, bad := range []struct {
		name string
		data []byte
		code string
	}{
		{"a renamed program", elf, "attachment-type"},
		{"a script named as a photo", []byte("#!/bin/sh\nrm -rf /\n"), "attachment-type"},
		{"HTML", []byte("<html><script>alert(1)</script></html>"), "attachment-type"},
		{"empty", nil, "attachment-empty"},
		{"too large", append([]byte("%PDF-1.7\n"), make([]byte, messaging.MaxAttachment)...), "attachment-large"},
		{"a broken JPEG", []byte{0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3}, "attachment-broken"},
		{"a PNG that says it is huge", pngHeader(100000, 100000), "attachment-broken"},
		{"a broken PDF", []byte("%PDF-1.7\nnot really"), "attachment-broken"},
		{"JavaScript", js, "attachment-pdf-active"},
		{"JavaScript in object streams", packedJS, "attachment-pdf-active"},
		{"a launch action", pdf("<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>", pages, page, "<< /S /Launch /F (calc.exe) >>"), "attachment-pdf-active"},
		{"an embedded file", pdf("<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(a.exe) 4 0 R] >> >> >>", pages, page,
			"<< /Type /Filespec /F (a.exe) /EF << /F 5 0 R >> >>", "<< /Type /EmbeddedFile /Length 2 >>\nstream\nMZ\nendstream"), "attachment-pdf-active"},
	} {
		_, err := messaging.CheckAttachment(ctx, messaging.Upload{Name: "photo.jpg", Data: bad.data})
		var ie *apperr.FieldError
		if !asInput(err, &ie) || ie.Key != "messages."+bad.code || ie.Field != "attachment" || apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: %v, want %s", bad.name, err, bad.code)
		}
	}
}

// pngHeader is the start of a PNG claiming a picture of w by h.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2
	out := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d")
	out = append(out, ihdr...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

func asInput(err error, target **apperr.FieldError) bool {
	ie, ok := err.(*apperr.FieldError)
	if ok {
		*target = ie
	}
	return ok
}

// FuzzCheckAttachment: whatever a person uploads, the check answers (kept
// or refused with a reason) and never panics; what it keeps is of one of
// the three types.
func FuzzCheckAttachment(f *testing.F) {
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 16})
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add(pdf("<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>", pages, page, "<< /S /JavaScript /JS (x) >>"))
	f.Add([]byte("%PDF-1.7\n1 0 obj << /Type /ObjStm /N 5 /First 999 >> stream\nxx\nendstream endobj\nstartxref\n9\n%%EOF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := messaging.CheckAttachment(context.Background(), messaging.Upload{Name: "f", Data: data})
		if err != nil {
			var ie *apperr.FieldError
			if !asInput(err, &ie) {
				t.Fatalf("not an input error: %v", err)
			}
			return
		}
		if a.ContentType != "image/jpeg" && a.ContentType != "image/png" && a.ContentType != "application/pdf" {
			t.Fatalf("kept as %s", a.ContentType)
		}
	})
}

// TestFilesWithMessages: a photo sent with a message is kept sealed,
// listed with the message (and in its Communication), and given back to
// the patient and the pool's members, each time audited; another patient
// and another pool's staff get ErrNoThread; a bad file refuses the whole
// message.
func TestFilesWithMessages(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		jpg := withEXIF(photo(t, "jpeg"))
		th, err := f.s.Start(ctx, f.gw, f.maria, f.mariaAs, f.pools(), f.rivera.ID, "Rash", "See the photo.", messaging.Upload{Name: "rash.jpg", Data: jpg})
		if err != nil {
			t.Fatal(err)
		}
		info := th.Messages[0].Attachments
		if len(info) != 1 || info[0].ContentType != "image/jpeg" || info[0].Name != "rash.jpg" {
			t.Fatalf("attachments = %+v", info)
		}
		var raw, rawName []byte
		if err := db.RawWriter().QueryRow("SELECT data, name FROM message_attachment").Scan(&raw, &rawName); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(rawName, []byte("rash")) || bytes.Contains(raw, []byte{0xFF, 0xD8, 0xFF}) {
			t.Error("the file or its name is stored in the clear")
		}
		for _, req := range []clinical.Request{f.maria, f.drRivera} {
			a, err := f.s.File(ctx, f.gw, req, th.ID, info[0].ID)
			if err != nil || a.ContentType != "image/jpeg" || bytes.Contains(a.Data, []byte("GPSLatitude")) {
				t.Errorf("%s gets the file: %v", req.Principal.User, err)
			}
		}
		for _, req := range []clinical.Request{f.sam, f.clerk} {
			if _, err := f.s.File(ctx, f.gw, req, th.ID, info[0].ID); !errors.Is(err, messaging.ErrNoThread) {
				t.Errorf("%s gets Maria's file: %v", req.Principal.User, err)
			}
		}
		if _, err := f.s.File(ctx, f.gw, f.maria, th.ID, "no-such-file"); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("a missing file: %v", err)
		}
		opened, _ := f.s.Thread(ctx, f.gw, f.drRivera, th.ID)
		if len(opened.Messages[0].Attachments) != 1 {
			t.Errorf("the thread lists %d files", len(opened.Messages[0].Attachments))
		}
		gw := &clinical.Gateway{Source: &messaging.Source{Clinical: store.New(db), Store: f.s}, Audit: f.s.Audit, Policies: &access.Store{DB: db}, Now: db.Now}
		r, err := gw.Read(ctx, f.maria, "Communication", th.Messages[0].ID)
		if err != nil || !strings.Contains(string(r.Raw), `"contentAttachment":{"contentType":"image/jpeg"`) || !strings.Contains(string(r.Raw), `"title":"rash.jpg"`) {
			t.Errorf("the Communication lacks its attachment: %v %s", err, r.Raw)
		}
		reads := 0
		for _, e := range audittest.Events(t, db) {
			if strings.Contains(e, `"read"`) && strings.Contains(e, "Communication/"+th.Messages[0].ID) && strings.Contains(e, `"outcome":"0"`) {
				reads++
			}
		}
		if reads < 2 {
			t.Errorf("%d audited reads of the file's message, want at least 2", reads)
		}
		elf := append([]byte("\x7fELF"), make([]byte, 64)...)
		if _, err := f.s.Send(ctx, f.gw, f.maria, f.mariaAs, th.ID, "And this", messaging.Upload{Name: "x.jpg", Data: elf}); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("a program as a photo: %v", err)
		}
		if _, err := f.s.Send(ctx, f.gw, f.maria, f.mariaAs, th.ID, "Two", messaging.Upload{Name: "a.jpg", Data: jpg}, messaging.Upload{Name: "b.jpg", Data: jpg}); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("two files: %v", err)
		}
		var n int
		db.RawWriter().QueryRow("SELECT COUNT(*) FROM message").Scan(&n)
		if n != 1 {
			t.Errorf("%d messages after the refused ones, want 1", n)
		}
	})
}
