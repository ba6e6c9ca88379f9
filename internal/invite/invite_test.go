package invite

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	key := Key(strings.Repeat("k", MinKeyBytes))
	now := time.Unix(1_800_000_000, 0)
	token, err := key.Sign("~team", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	exp, sig, _ := strings.Cut(token, ".")
	for _, c := range []struct {
		name        string
		key         Key
		token, room string
		at          time.Time
		want        error
	}{
		{"its room, in time", key, token, "~team", now, nil},
		{"a second before it expires", key, token, "~team", now.Add(time.Hour - time.Second), nil},
		{"when it expires", key, token, "~team", now.Add(time.Hour), ErrExpired},
		{"another room", key, token, "~other", now, ErrInvalid},
		{"another key", Key(strings.Repeat("x", MinKeyBytes)), token, "~team", now, ErrInvalid},
		{"a later expiry with the old signature", key, "1900000000." + sig, "~team", now, ErrInvalid},
		{"the expiry written otherwise", key, "0" + exp + "." + sig, "~team", now, ErrInvalid},
		{"no signature", key, exp, "~team", now, ErrInvalid},
		{"not base64", key, exp + ".!!", "~team", now, ErrInvalid},
		{"empty", key, "", "~team", now, ErrInvalid},
		{"no key", nil, token, "~team", now, ErrNoKey},
	} {
		if err := c.key.Check(c.token, c.room, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: Check = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := Key(nil).Sign("~team", now); !errors.Is(err, ErrNoKey) {
		t.Errorf("Sign without a key = %v, want ErrNoKey", err)
	}
}
