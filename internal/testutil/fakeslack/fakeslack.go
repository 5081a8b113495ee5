// Package fakeslack is Slack's Web API as slack-go's client reaches it, for
// tests: it records every call, answers chat.postMessage with a fresh ts
// unless a test scripts another answer, and reads posted blocks back.
package fakeslack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options shape a Server's answers.
type Options struct {
	// Channel is the channel id chat.postMessage answers with; empty: the
	// channel the message was posted to.
	Channel string
	// OnlyPostMessage answers any other method with 400.
	OnlyPostMessage bool
}

// Server records every call of the Web API.
type Server struct {
	*httptest.Server
	opts Options

	mu     sync.Mutex
	calls  []Call
	msgs   []Message
	answer func(n int) (status int, body string)
	ts     int
}

// Call is one request, as sent.
type Call struct {
	Path          string
	Authorization string
	Body          string
}

// Message is one chat.postMessage as Slack received it.
type Message struct {
	Channel, Text string
	Blocks        []Block
	// Form holds the fields of a form post (slack-go's way), the token
	// field included; nil for a JSON post. It and Authorization carry
	// the token, so they are no part of the message's JSON.
	Form          url.Values `json:"-"`
	Authorization string     `json:"-"`
}

// Block is a posted layout block, as far as tests read it.
type Block struct {
	Type     string `json:"type"`
	Text     *Text  `json:"text"`
	Fields   []Text `json:"fields"`
	Elements []Text `json:"elements"`
}

// Text is a text object of a block.
type Text struct {
	Text string `json:"text"`
}

// Start runs a Server until the test ends.
func Start(t testing.TB, o Options) *Server {
	s := &Server{opts: o}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// SetAnswer scripts the answers: answer gets the number of messages posted
// so far (this one included); a status other than 0 is sent with body
// instead of success (429 with Retry-After: 3).
func (s *Server) SetAnswer(answer func(n int) (status int, body string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = answer
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	isPost := strings.HasSuffix(r.URL.Path, "/chat.postMessage")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: string(body)})
	if !isPost {
		if s.opts.OnlyPostMessage {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
		return
	}
	m, err := decodeMessage(r.Header.Get("Content-Type"), body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m.Authorization = r.Header.Get("Authorization")
	s.msgs = append(s.msgs, m)
	if s.answer != nil {
		if code, text := s.answer(len(s.msgs)); code != 0 {
			if code == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "3")
			}
			w.WriteHeader(code)
			_, _ = io.WriteString(w, text)
			return
		}
	}
	s.ts++
	channel := s.opts.Channel
	if channel == "" {
		channel = m.Channel
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": channel, "ts": fmt.Sprintf("1700000000.%06d", s.ts)})
}

func decodeMessage(contentType string, body []byte) (Message, error) {
	var m Message
	if strings.HasPrefix(contentType, "application/json") {
		var in struct {
			Channel string  `json:"channel"`
			Text    string  `json:"text"`
			Blocks  []Block `json:"blocks"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return m, fmt.Errorf("bad JSON body: %v", err)
		}
		return Message{Channel: in.Channel, Text: in.Text, Blocks: in.Blocks}, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return m, fmt.Errorf("bad form: %v", err)
	}
	m = Message{Channel: form.Get("channel"), Text: form.Get("text"), Form: form}
	if b := form.Get("blocks"); b != "" {
		if err := json.Unmarshal([]byte(b), &m.Blocks); err != nil {
			return m, fmt.Errorf("bad blocks: %v", err)
		}
	}
	return m, nil
}

// Messages are the messages posted so far, failed answers included.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Find is the messages posted so far that keep accepts.
func (s *Server) Find(keep func(Message) bool) []Message {
	var out []Message
	for _, m := range s.Messages() {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// Calls are every request so far, as sent.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Header is the text of the message's header block.
func (m Message) Header() string {
	for _, b := range m.Blocks {
		if b.Type == "header" && b.Text != nil {
			return b.Text.Text
		}
	}
	return ""
}

// Sections are the texts of the message's section blocks that have one.
func (m Message) Sections() []string {
	var out []string
	for _, b := range m.Blocks {
		if b.Type == "section" && b.Text != nil {
			out = append(out, b.Text.Text)
		}
	}
	return out
}

// Fields maps each "*Label*\nvalue" field of the message to its value, by
// the label without its stars.
func (m Message) Fields() map[string]string {
	out := map[string]string{}
	for _, b := range m.Blocks {
		for _, f := range b.Fields {
			if label, value, ok := strings.Cut(f.Text, "\n"); ok {
				out[strings.Trim(label, "*")] = value
			}
		}
	}
	return out
}

// Signature is the v0 signature Slack sends with a request body sent at
// ts (Unix seconds), made with the app's signing secret.
func Signature(signingSecret, ts, body string) string {
	mac := hmac.New(sha256.New, []byte(signingSecret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// SignCommand makes req a slash command Slack sent at at with the form
// body: its content type, timestamp and signature headers.
func SignCommand(req *http.Request, signingSecret string, at time.Time, body string) {
	ts := strconv.FormatInt(at.Unix(), 10)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", Signature(signingSecret, ts, body))
}
