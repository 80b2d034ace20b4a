package gmail

import gmailv1 "google.golang.org/api/gmail/v1"

// HistoryPage is the net effect of one page of history records: which
// messages were added (their metadata must be fetched), deleted, or
// relabelled (the records carry the labels after the change, so no fetch is
// needed), each in the order the history first mentioned it.
type HistoryPage struct {
	Added     []string
	Deleted   []string
	Relabeled []string
	// Labels holds the labels of each Relabeled message after its last change.
	Labels map[string][]string
	// LabelRecords holds the id of the history record of each Relabeled
	// message's last change, which identifies that change.
	LabelRecords map[string]uint64
	// HistoryID is where the next page, or the next sync, starts: the last
	// record's id when more pages follow, else the mailbox's history id.
	HistoryID     uint64
	NextPageToken string
}

// Changed reports whether the page holds any change.
func (p *HistoryPage) Changed() bool {
	return len(p.Added)+len(p.Deleted)+len(p.Relabeled) > 0
}

// collect folds one page of history records into its net effect: a message
// added then deleted is only deleted; a label change of a message added in
// the same page is covered by fetching it after all its changes.
func collect(page *gmailv1.ListHistoryResponse) *HistoryPage {
	added, deleted := map[string]bool{}, map[string]bool{}
	labels := map[string][]string{}
	records := map[string]uint64{}
	var order []string
	note := func(id string) {
		if !added[id] && !deleted[id] {
			if _, ok := labels[id]; !ok {
				order = append(order, id)
			}
		}
	}
	for _, h := range page.History {
		for _, a := range h.MessagesAdded {
			if a.Message == nil {
				continue
			}
			note(a.Message.Id)
			added[a.Message.Id] = true
			delete(deleted, a.Message.Id)
			delete(labels, a.Message.Id)
		}
		for _, d := range h.MessagesDeleted {
			if d.Message == nil {
				continue
			}
			note(d.Message.Id)
			delete(added, d.Message.Id)
			delete(labels, d.Message.Id)
			deleted[d.Message.Id] = true
		}
		relabel := func(m *gmailv1.Message) {
			if m == nil || deleted[m.Id] || added[m.Id] {
				return
			}
			note(m.Id)
			labels[m.Id] = append([]string(nil), m.LabelIds...)
			records[m.Id] = h.Id
		}
		for _, l := range h.LabelsAdded {
			relabel(l.Message)
		}
		for _, l := range h.LabelsRemoved {
			relabel(l.Message)
		}
	}
	out := &HistoryPage{Labels: labels, LabelRecords: records, HistoryID: page.HistoryId, NextPageToken: page.NextPageToken}
	if page.NextPageToken != "" && len(page.History) > 0 {
		out.HistoryID = page.History[len(page.History)-1].Id
	}
	for _, id := range order {
		switch _, relabeled := labels[id]; {
		case added[id]:
			out.Added = append(out.Added, id)
		case deleted[id]:
			out.Deleted = append(out.Deleted, id)
		case relabeled:
			out.Relabeled = append(out.Relabeled, id)
		}
	}
	return out
}
