package gmail

import (
	"net/http"
	"strings"
)

// Method names, as Google's quota table names them.
const (
	MethodMessagesList = "messages.list"
	MethodMessagesGet  = "messages.get"
	MethodHistoryList  = "history.list"
	MethodGetProfile   = "getProfile"
	MethodLabelsList   = "labels.list"
	MethodLabelsGet    = "labels.get"
	MethodOther        = "other"
)

// Costs is the one table of what each Gmail method the functions call costs
// in quota units, from Google's per-method quota table
// (https://developers.google.com/workspace/gmail/api/reference/quota).
// A method not listed is charged OtherCost.
var Costs = map[string]int{
	MethodMessagesList: 5,
	MethodMessagesGet:  5,
	MethodHistoryList:  2,
	MethodGetProfile:   1,
	MethodLabelsList:   1,
	MethodLabelsGet:    1,
}

// OtherCost is charged for a request Classify cannot name.
const OtherCost = 5

// Classify returns the Gmail method of a request and its cost in quota units.
func Classify(method, path string) (string, int) {
	name := methodOf(method, path)
	if c, ok := Costs[name]; ok {
		return name, c
	}
	return MethodOther, OtherCost
}

func methodOf(method, path string) string {
	i := strings.Index(path, "/gmail/v1/users/")
	if i < 0 || method != http.MethodGet {
		return MethodOther
	}
	rest := path[i+len("/gmail/v1/users/"):]
	parts := strings.Split(strings.Trim(rest, "/"), "/") // {userId}/messages/{id}
	switch {
	case len(parts) == 2 && parts[1] == "messages":
		return MethodMessagesList
	case len(parts) == 3 && parts[1] == "messages":
		return MethodMessagesGet
	case len(parts) == 2 && parts[1] == "history":
		return MethodHistoryList
	case len(parts) == 2 && parts[1] == "profile":
		return MethodGetProfile
	case len(parts) == 2 && parts[1] == "labels":
		return MethodLabelsList
	case len(parts) == 3 && parts[1] == "labels":
		return MethodLabelsGet
	}
	return MethodOther
}

// ScopeReadonly is the scope that lets the functions list and read mail.
const ScopeReadonly = "https://www.googleapis.com/auth/gmail.readonly"

// CanList reports whether granted includes a scope that can list mail:
// gmail.readonly, gmail.modify or full access (gmail.metadata cannot search).
func CanList(granted []string) bool {
	for _, s := range granted {
		switch s {
		case ScopeReadonly, "https://www.googleapis.com/auth/gmail.modify", "https://mail.google.com/":
			return true
		}
	}
	return false
}
