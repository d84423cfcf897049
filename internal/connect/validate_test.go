package connect

import (
	"testing"

	"github.com/ferryhq/ferry/internal/secret"
)

func TestNormalizeParamsDefaultsAndTrims(t *testing.T) {
	cases := []struct {
		in      Params
		baseURL string
		field   string // "" = accepted
	}{
		{Params{AppID: "a", Token: secret.New("t")}, "https://app.iconik.io", ""},
		{Params{BaseURL: " https://eu.iconik.io/ ", AppID: " a ", Token: secret.New(" t\n")}, "https://eu.iconik.io", ""},
		{Params{BaseURL: "https://tenant.iconik.cloud/base", AppID: "a", Token: secret.New("t")}, "https://tenant.iconik.cloud/base", ""},
		{Params{BaseURL: "app.iconik.io", AppID: "a", Token: secret.New("t")}, "", "base_url"},
		{Params{BaseURL: "https://user:pw@app.iconik.io", AppID: "a", Token: secret.New("t")}, "", "base_url"},
		{Params{BaseURL: "https://app.iconik.io/?x=1", AppID: "a", Token: secret.New("t")}, "", "base_url"},
		{Params{AppID: "a b", Token: secret.New("t")}, "", "app_id"},
		{Params{AppID: "a", Token: secret.New("tök")}, "", "token"},
	}
	for _, c := range cases {
		p := c.in
		err := normalizeParams(&p)
		if c.field != "" {
			if e := AsError(err); e == nil || e.Field != c.field || e.Status != 400 {
				t.Errorf("%+v: error %v, want a 400 on %s", c.in, err, c.field)
			}
			continue
		}
		if err != nil || p.BaseURL != c.baseURL || p.AppID != "a" || p.Token.Reveal() != "t" {
			t.Errorf("%+v: got %+v (token %q), %v", c.in, p, p.Token.Reveal(), err)
		}
	}
}
