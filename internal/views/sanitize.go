package views

import "github.com/microcosm-cc/bluemonday"

// DocumentPolicy returns the sanitizer for documents' HTML: text, lists,
// tables and headings only. Scripts, styles, event handlers, forms,
// frames and images (which could call out to other sites) are removed;
// links keep only http(s) addresses and open without a referrer.
func DocumentPolicy() Sanitizer {
	p := bluemonday.NewPolicy()
	p.AllowElements("p", "br", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "b", "strong", "i", "em", "u",
		"table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "blockquote", "pre", "code", "hr", "span", "div",
		"dl", "dt", "dd", "sub", "sup", "small")
	p.AllowAttrs("colspan", "rowspan", "scope").OnElements("td", "th")
	p.AllowStandardURLs()
	p.AllowURLSchemes("http", "https")
	p.AllowAttrs("href").OnElements("a")
	p.RequireNoReferrerOnLinks(true)
	p.RequireNoFollowOnLinks(true)
	return p
}
