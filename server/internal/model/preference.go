package model

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Preference categories and names the server gives meaning to.
const (
	PreferenceCategoryTheme           = "theme"
	PreferenceCategoryFlaggedPost     = "flagged_post"
	PreferenceCategorySidebarSettings = "sidebar_settings"
	PreferenceLimitVisibleDmsGms      = "limit_visible_dms_gms"
)

// Preference limits, from Mattermost's model.Preference.IsValid.
const (
	PreferenceCategoryMaxLength          = 32
	PreferenceNameMaxLength              = 32
	MaxPreferenceValueLength             = 20000
	PreferenceMaxLimitVisibleDmsGmsValue = 40
)

// Preference is one of a user's client settings.
type Preference struct {
	UserID   string `json:"user_id"`
	Category string `json:"category"`
	Name     string `json:"name"`
	Value    string `json:"value"`
}

// IsValid is Mattermost's Preference.IsValid; where names the operation
// for the error.
func (p *Preference) IsValid(where string) *AppError {
	invalid := func(id, detail string) *AppError {
		return NewAppError(where, "model.preference.is_valid."+id+".app_error", http.StatusBadRequest,
			"Invalid preference.").Detail("%s", detail)
	}
	if !IsValidID(p.UserID) {
		return invalid("id", "user_id="+p.UserID)
	}
	if p.Category == "" || len(p.Category) > PreferenceCategoryMaxLength {
		return invalid("category", "category="+p.Category)
	}
	if len(p.Name) > PreferenceNameMaxLength {
		return invalid("name", "name="+p.Name)
	}
	if utf8.RuneCountInString(p.Value) > MaxPreferenceValueLength {
		return invalid("value", "value too long")
	}
	// Postgres stores no NUL character in text.
	if strings.ContainsRune(p.Category, 0) || strings.ContainsRune(p.Name, 0) || strings.ContainsRune(p.Value, 0) {
		return invalid("value", "NUL character")
	}
	if !utf8.ValidString(p.Category) || !utf8.ValidString(p.Name) || !utf8.ValidString(p.Value) {
		return invalid("value", "invalid UTF-8")
	}
	if p.Category == PreferenceCategoryTheme {
		var theme map[string]string
		if err := json.Unmarshal([]byte(p.Value), &theme); err != nil {
			return invalid("theme", "value is not a theme").Wrap(err)
		}
	}
	if p.Category == PreferenceCategorySidebarSettings && p.Name == PreferenceLimitVisibleDmsGms {
		n, err := strconv.Atoi(p.Value)
		if err != nil || n < 1 || n > PreferenceMaxLimitVisibleDmsGmsValue {
			return invalid("limit_visible_dms_gms", "value="+p.Value)
		}
	}
	return nil
}

var themeColorPattern = regexp.MustCompile(`^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$`)

// PreUpdate is Mattermost's Preference.PreUpdate: a theme's colours that
// are not #rgb or #rrggbb become white, so no stored theme carries markup
// into a client's CSS.
func (p *Preference) PreUpdate() {
	if p.Category != PreferenceCategoryTheme {
		return
	}
	var theme map[string]string
	if err := json.Unmarshal([]byte(p.Value), &theme); err != nil {
		return // IsValid rejects it
	}
	for k, v := range theme {
		if k == "image" || k == "type" || k == "codeTheme" {
			continue
		}
		if !themeColorPattern.MatchString(v) {
			theme[k] = "#ffffff"
		}
	}
	if b, err := json.Marshal(theme); err == nil {
		p.Value = string(b)
	}
}
