// Package gmail is everything the functions know about the Gmail API: the
// calls they make (messages.list, messages.get with format=metadata,
// users.getProfile, users.history.list), what each costs in quota units
// (Costs), the quota-aware transport that spends those units and backs off
// when Gmail says no (Transport), the typed error of a failed call (*Error
// and its Kind), and the rule for a refused access token (Service.Do).
//
// It is the only package that imports google.golang.org/api/gmail/v1.
package gmail
