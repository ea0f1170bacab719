package atna

import (
	"fmt"

	"github.com/trailhq/trail"
)

// requestor is the index of the actor: the first participant with
// UserIsRequestor true, else the first participant (noted); -1 for none.
func (mp *mapper) requestor() int {
	ps := mp.m.Participants
	for i := range ps {
		if ps[i].Requestor() {
			return i
		}
	}
	if len(ps) == 0 {
		return -1
	}
	mp.note("no ActiveParticipant has UserIsRequestor true: the first is the actor")
	return 0
}

// mapActorAndParticipants makes the requestor the actor and every other
// participant an entity of type "participant".
func (mp *mapper) mapActorAndParticipants() {
	ai := mp.requestor()
	if ai < 0 {
		mp.fail("no ActiveParticipant: an event needs an actor")
		return
	}
	for i := range mp.m.Participants {
		p := &mp.m.Participants[i]
		path := fmt.Sprintf("ActiveParticipant[%d]", i+1)
		mp.participantLosses(path, p)
		if i == ai {
			mp.mapActor(path, p)
			continue
		}
		if p.UserID == "" {
			mp.note("%s has no UserID: left out", path)
			continue
		}
		mp.lost(path+"/@NetworkAccessPointID", p.NetworkAccessPointID)
		mp.out.Event.Entities = append(mp.out.Event.Entities, trail.Entity{
			Type: ParticipantType,
			ID:   p.UserID,
			Role: mp.role(path, p.RoleIDCodes),
			Name: p.UserName,
		})
	}
}

func (mp *mapper) mapActor(path string, p *ActiveParticipant) {
	if p.UserID == "" {
		mp.fail("%s, the actor, has no UserID", path)
		return
	}
	mp.out.Event.Actor = trail.Actor{
		ID:      p.UserID,
		Name:    p.UserName,
		Role:    mp.role(path, p.RoleIDCodes),
		Address: p.NetworkAccessPointID,
	}
}

// role renders the first RoleIDCode as system|code; the others are noted.
func (mp *mapper) role(path string, codes []Code) string {
	for i, c := range codes[min(1, len(codes)):] {
		mp.lost(fmt.Sprintf("%s/RoleIDCode[%d]", path, i+2), c.String())
	}
	if len(codes) == 0 {
		return ""
	}
	return codes[0].String()
}

// participantLosses notes what of a participant no event member holds.
func (mp *mapper) participantLosses(path string, p *ActiveParticipant) {
	mp.lost(path+"/@AlternativeUserID", p.AlternativeUserID)
	mp.lost(path+"/@NetworkAccessPointTypeCode", p.NetworkAccessPointTypeCode)
	mp.unknown(path, p.Unknown)
	if p.MediaIdentifier != nil {
		mp.lost(path+"/MediaIdentifier/MediaType", first(p.MediaIdentifier.MediaType.String(), "(no code)"))
	}
}
