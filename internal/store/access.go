package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// A private room (chat.Private) has an owner and members. Both are kept in
// the messages table, next to the room's head, and never expire: pk
// room#{room}, sk "meta" (the room: its owner and when it was made) and sk
// access#{userId} (a member and their role). Whether a user may connect is
// one GetItem of their access item, so that a room that does not exist and
// one the user is not a member of look the same. A member removed or
// banned keeps their access item, with the role roleRemoved or
// chat.RoleBanned, so that an invite link does not let them back in (only
// the owner's invite does, which also lifts a ban). Each member also has an
// item under their own key, pk mine#{userId}, sk the room (with the other
// account, for direct messages), written and deleted in the same
// transaction as their access item: the rooms a page lists for them.

const (
	metaSK       = "meta"
	accessPrefix = "access#"
	minePrefix   = "mine#"
	// roleRemoved is the stored role of a member the owner removed: not a
	// member, and not let in by an invite link.
	roleRemoved = "removed"
	// addedByLink is the addedBy of a member who came by an invite link.
	addedByLink = "link"
	// quotaPrefix and roomsSK key the count of rooms an account made.
	quotaPrefix = "quota#"
	roomsSK     = "rooms"
)

// mineItem is a private room its user belongs to: pk mine#{userId}, sk
// the room.
type mineItem struct {
	keys
	Peer     string `dynamodbav:"peer,omitempty"`     // direct messages: the other account
	PeerName string `dynamodbav:"peerName,omitempty"` // its name, once it connected
}

func mineKey(userID, room string) map[string]types.AttributeValue {
	return key(minePrefix+userID, room)
}

// putMine is the write of a user's item of a room, for a transaction.
func (db *DB) putMine(it mineItem) (types.TransactWriteItem, error) {
	item, err := marshal(it)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Put: &types.Put{TableName: &db.tables.Messages, Item: item}}, nil
}

// metaItem is a private room: pk room#{room}, sk meta.
type metaItem struct {
	keys
	Owner     string `dynamodbav:"owner,omitempty"` // none for direct messages
	DM        bool   `dynamodbav:"dm,omitempty"`    // the direct messages of two accounts (chat.DMRoom)
	CreatedAt int64  `dynamodbav:"createdAt"`       // Unix ms
}

// accessItem is a member of a private room, or one of a public room's
// staff, or someone banned or muted there: pk room#{room}, sk
// access#{userId}.
type accessItem struct {
	keys
	Role       string `dynamodbav:"role"`
	AddedBy    string `dynamodbav:"addedBy"`
	AddedAt    int64  `dynamodbav:"addedAt"`              // Unix ms
	MutedUntil int64  `dynamodbav:"mutedUntil,omitempty"` // Unix ms
	Name       string `dynamodbav:"name,omitempty"`       // the name they last connected with
	Peer       string `dynamodbav:"peer,omitempty"`       // direct messages: the other account
}

func accessKey(room, userID string) map[string]types.AttributeValue {
	return key(roomPrefix+room, accessPrefix+userID)
}

// Membership returns the place of userID in a private room: no role if
// they are not a member (or the room does not exist). Strongly
// consistent, so that a removal is seen by the next read.
func (db *DB) Membership(ctx context.Context, room, userID string) (chat.Membership, error) {
	var it accessItem
	if _, err := db.getItem(ctx, db.tables.Messages, accessKey(room, userID), &it); err != nil {
		return chat.Membership{}, fmt.Errorf("get the role of %s in room %q: %w", userID, room, err)
	}
	m := chat.Membership{Name: it.Name}
	switch it.Role {
	case roleRemoved:
	case chat.RoleBanned:
		m.Banned = true
	default:
		m.Role, m.MutedUntil = it.Role, optionalMS(it.MutedUntil)
	}
	return m, nil
}

// NameMember records the name a member of a private room connected with,
// for the room's roster; in direct messages, also on the other account's
// item of the room, for their room list. A member removed meanwhile is
// not added back.
func (db *DB) NameMember(ctx context.Context, room, userID, name string) error {
	out, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &db.tables.Messages, Key: accessKey(room, userID),
		UpdateExpression: aws.String("SET #name = :name"), ConditionExpression: aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames: map[string]string{"#name": "name"}, ExpressionAttributeValues: map[string]types.AttributeValue{":name": str(name)},
		ReturnValues: types.ReturnValueAllNew})
	if conditionFailed(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("name %s in room %q: %w", userID, room, err)
	}
	var it accessItem
	if err := unmarshal(out.Attributes, &it); err != nil || it.Peer == "" {
		return err
	}
	_, err = db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &db.tables.Messages, Key: mineKey(it.Peer, room),
		UpdateExpression: aws.String("SET peerName = :name"), ConditionExpression: aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":name": str(name)}})
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("name %s in the direct messages of %s: %w", userID, it.Peer, err)
	}
	return nil
}

// Roster returns a page of a private room's members and banned users (at
// most limit), after the member cursor, and the cursor of the next page
// ("" if none).
func (db *DB) Roster(ctx context.Context, room, cursor string, limit int) ([]chat.RosterMember, string, error) {
	in := &dynamodb.QueryInput{
		TableName:                &db.tables.Messages,
		KeyConditionExpression:   aws.String("pk = :pk AND begins_with(sk, :access)"),
		FilterExpression:         aws.String("#role <> :removed"),
		ExpressionAttributeNames: map[string]string{"#role": "role"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(roomPrefix + room), ":access": str(accessPrefix),
			":removed": str(roleRemoved)},
		ConsistentRead: aws.Bool(true),
		Limit:          aws.Int32(int32(limit)),
	}
	if cursor != "" {
		in.ExclusiveStartKey = accessKey(room, cursor)
	}
	out, err := db.client.Query(ctx, in)
	var its []accessItem
	if err == nil {
		err = attributevalue.UnmarshalListOfMaps(out.Items, &its)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the members of room %q: %w", room, err)
	}
	members := make([]chat.RosterMember, len(its))
	for i, it := range its {
		members[i] = chat.RosterMember{UserID: strings.TrimPrefix(it.SK, accessPrefix), Name: it.Name, Role: it.Role}
		if until := optionalMS(it.MutedUntil); until.After(db.Now()) {
			members[i].MutedUntil = chat.FormatTime(until)
		}
	}
	next, err := nextCursor(out.LastEvaluatedKey, accessPrefix)
	return members, next, err
}

// MyRooms returns the private rooms userID belongs to, direct messages
// included (at most chat.MyRoomsPage).
func (db *DB) MyRooms(ctx context.Context, userID string) ([]chat.MyRoom, error) {
	items, err := db.queryItems(ctx, &dynamodb.QueryInput{
		TableName:                 &db.tables.Messages,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(minePrefix + userID)},
		Limit:                     aws.Int32(chat.MyRoomsPage),
	}, chat.MyRoomsPage, false) // they do not expire
	var its []mineItem
	if err == nil {
		err = attributevalue.UnmarshalListOfMaps(items, &its)
	}
	if err != nil {
		return nil, fmt.Errorf("read the rooms of %s: %w", userID, err)
	}
	rooms := make([]chat.MyRoom, len(its))
	for i, it := range its {
		rooms[i] = chat.MyRoom{Room: it.SK, Peer: it.Peer, PeerName: it.PeerName}
	}
	return rooms, nil
}

// Mute mutes userID in a private room until until (the zero time lifts
// it). The owner mutes (and lets speak) members and moderators; a
// moderator not muted themselves, members only; nobody mutes the owner
// or themselves (else not_allowed). It marks their open connections too,
// so that their next frame is refused without another read.
func (db *DB) Mute(ctx context.Context, room, by, userID string, until time.Time) error {
	mod, err := db.moderator(ctx, room, by, userID, "mutes")
	if err != nil {
		return err
	}
	// The muter's role as read, and the muted one's, checked as written.
	// In a public room anyone not on staff may be muted: the mute is an
	// access item without a role, which $connect reads anyway.
	e := chat.AuditEntry{By: by, Action: chat.ActionMute, UserID: userID}
	if !until.IsZero() {
		e.Until = chat.FormatTime(until)
	}
	audit, err := db.auditPut(room, e)
	if err != nil {
		return err
	}
	values := map[string]types.AttributeValue{":until": num(optionalTime(until))}
	target := moderated(mod, values)
	if !chat.Private(room) {
		target = "attribute_not_exists(#role) OR " + target
	}
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		db.stillHas(room, by, mod),
		{Update: &types.Update{TableName: &db.tables.Messages, Key: accessKey(room, userID),
			UpdateExpression: aws.String("SET mutedUntil = :until"), ConditionExpression: aws.String(target),
			ExpressionAttributeNames: map[string]string{"#role": "role"}, ExpressionAttributeValues: values}},
		audit,
	}})
	if err := moderationRefused(err, refusal("mutes")); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("mute %s in room %q: %w", userID, room, err)
	}
	return db.eachConnection(ctx, room, userID, func(id string) error { return db.muteConnection(ctx, id, until) })
}

// moderator returns the role of by, who would verb ("mutes", "bans")
// userID in a room: the owner, or a moderator not muted; anyone
// else, or by acting on themselves, is refused with not_allowed.
func (db *DB) moderator(ctx context.Context, room, by, userID, verb string) (string, error) {
	if by == userID {
		return "", chat.Errorf(chat.CodeNotAllowed, "nobody "+verb+" themselves")
	}
	mod, err := db.Membership(ctx, room, by)
	if err != nil {
		return "", err
	}
	if !chat.Moderates(mod.Role) || mod.MutedUntil.After(db.Now()) {
		return "", refusal(verb)
	}
	return mod.Role, nil
}

// refusal is the answer to a mute or ban (verb) that moderated says no to.
func refusal(verb string) error {
	return chat.Errorf(chat.CodeNotAllowed, "the owner "+verb+" members and moderators, a moderator members only, and nobody the owner")
}

// moderationRefused says why a moderator's transaction (stillHas
// first) was cancelled by a condition: the moderator is one no more, or
// refused (what the target's condition means); nil for any other outcome.
func moderationRefused(err error, refused error) error {
	reasons := cancelReasons(err)
	switch {
	case len(reasons) > 0 && reasonIs(reasons[0], reasonCondition):
		return chat.Errorf(chat.CodeNotAllowed, "you are no longer the owner or a moderator here")
	case cancelledByCondition(err):
		return refused
	}
	return nil
}

// errNotOwner refuses what only a room's owner does to its members.
var errNotOwner = chat.Errorf(chat.CodeNotAllowed, "only the room's owner may add or remove its members")

// stillHas is the check, in a transaction, that by still has the role
// (owner or moderator) read before it, or that an owner's action needs.
func (db *DB) stillHas(room, by, role string) types.TransactWriteItem {
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: &db.tables.Messages, Key: accessKey(room, by),
		ConditionExpression:       aws.String("#role = :by"),
		ExpressionAttributeNames:  map[string]string{"#role": "role"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":by": str(role)}}}
}

// moderated returns the condition on a member's access item (#role) that
// a moderator of role may mute or ban them: the owner, members and
// moderators; a moderator, members only. It adds its values to values.
func moderated(role string, values map[string]types.AttributeValue) string {
	values[":member"] = str(chat.RoleMember)
	if role == chat.RoleModerator {
		return "#role = :member"
	}
	values[":moderator"] = str(chat.RoleModerator)
	return "#role IN (:member, :moderator)"
}

// Ban bans userID from a private room (lift: lifts it), if by may mute
// them (Mute's rules; a moderator lifts any ban): their access item stays,
// with the role chat.RoleBanned, so that they cannot connect, and an
// invite link does not let them in; only the owner's invite adds them
// again. Someone who was never a member may be banned too, before they
// use a link. The caller closes their connections, as after Revoke.
func (db *DB) Ban(ctx context.Context, room, by, userID string, lift bool) error {
	mod, err := db.moderator(ctx, room, by, userID, "bans")
	if err != nil {
		return err
	}
	e := chat.AuditEntry{By: by, Action: chat.ActionBan, UserID: userID, Role: chat.RoleBanned}
	if lift {
		e.Role = ""
	}
	audit, err := db.auditPut(room, e)
	if err != nil {
		return err
	}
	refused := refusal("bans")
	values := map[string]types.AttributeValue{":banned": str(chat.RoleBanned), ":by": str(by), ":at": num(ms(db.Now()))}
	update := &types.Update{TableName: &db.tables.Messages, Key: accessKey(room, userID), ExpressionAttributeNames: map[string]string{"#role": "role"},
		ExpressionAttributeValues: values}
	items := []types.TransactWriteItem{db.stillHas(room, by, mod), {Update: update}, audit}
	// A ban keeps who made it (bannedAs): a moderator lifts, or makes
	// again, only a moderator's ban, so that the owner's stands.
	banned := "#role = :banned"
	if mod == chat.RoleModerator {
		banned = "(#role = :banned AND bannedAs = :as)"
		values[":as"] = str(mod)
	}
	switch {
	case lift && !chat.Private(room): // nobody in particular again
		update.UpdateExpression = aws.String("REMOVE #role SET liftedBy = :by, liftedAt = :at")
	case lift: // removed: a link does not let them back
		update.UpdateExpression = aws.String("SET #role = :removed, liftedBy = :by, liftedAt = :at")
		values[":removed"] = str(roleRemoved)
	}
	if lift {
		refused = chat.Errorf(chat.CodeNotAllowed, "they are not banned here, or the owner banned them")
		update.ConditionExpression = aws.String(banned)
	} else {
		values[":removed"], values[":as"] = str(roleRemoved), str(mod)
		update.UpdateExpression = aws.String("SET #role = :banned, bannedBy = :by, bannedAs = :as, bannedAt = :at REMOVE mutedUntil")
		update.ConditionExpression = aws.String("attribute_not_exists(#role) OR #role = :removed OR " + banned + " OR " + moderated(mod, values))
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: &db.tables.Messages, Key: mineKey(userID, room)}})
	}
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err := moderationRefused(err, refused); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("ban %s in room %q (lift %t): %w", userID, room, lift, err)
	}
	return nil
}

// JoinByLink makes userID (called name) a member of a private room, as an
// invite link does: only if the room exists and is not direct messages,
// and userID has no access item (nobody removed or banned comes back so).
func (db *DB) JoinByLink(ctx context.Context, room, userID, name string) error {
	now := ms(db.Now())
	access, err := marshal(accessItem{keys: keys{roomPrefix + room, accessPrefix + userID}, Role: chat.RoleMember, AddedBy: addedByLink, AddedAt: now, Name: name})
	if err != nil {
		return err
	}
	mine, err := db.putMine(mineItem{keys: keys{minePrefix + userID, room}})
	if err != nil {
		return err
	}
	audit, err := db.auditPut(room, chat.AuditEntry{By: userID, Action: chat.ActionInvite, UserID: userID, Role: chat.RoleMember})
	if err != nil {
		return err
	}
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{TableName: &db.tables.Messages, Key: key(roomPrefix+room, metaSK),
			ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(dm)")}},
		{Put: &types.Put{TableName: &db.tables.Messages, Item: access, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		mine, audit,
	}})
	reasons := cancelReasons(err)
	switch {
	case err == nil:
		return nil
	case len(reasons) > 1 && reasonIs(reasons[0], reasonCondition):
		return chat.Errorf(chat.CodeNotAllowed, "this invite link is for a room that is not there")
	case len(reasons) > 1 && reasonIs(reasons[1], reasonCondition):
		return chat.Errorf(chat.CodeNotAllowed, "you were removed from this room: only its owner can add you back")
	}
	return fmt.Errorf("join room %q by an invite link as %s: %w", room, userID, err)
}

// A connection's role and mute are written by $connect (what it read) and
// by moderators' changes; each field has a mark (muteSet, roleSet) that a
// moderator's change sets, so that $connect's write of what it read, older
// than that change, does not undo it (MarkConnection).
var (
	muteField = connectionField{attr: "mutedUntil", mark: "muteSet"}
	roleField = connectionField{attr: "role", mark: "roleSet"}
)

type connectionField struct{ attr, mark string }

// muteConnection marks a connection muted until until (zero: not), a
// moderator's change; one gone meanwhile is no error.
func (db *DB) muteConnection(ctx context.Context, id string, until time.Time) error {
	return db.setConnection(ctx, id, muteField, num(optionalTime(until)), true)
}

// roleConnection records on a connection its user's new role in the room
// ("": none), a moderator's change, so that a frame reads it with the
// connection; one gone meanwhile is no error.
func (db *DB) roleConnection(ctx context.Context, id, role string) error {
	return db.setConnection(ctx, id, roleField, str(role), true)
}

// MarkConnection records on a connection $connect has just stored (with
// was) its user's role and mute as $connect then read them (now), each
// only if it changed and no moderator's change reached that field since:
// such a change is newer than the read, and stays.
func (db *DB) MarkConnection(ctx context.Context, id string, was, now chat.Membership) error {
	if now.Role != was.Role {
		if err := db.setConnection(ctx, id, roleField, str(now.Role), false); err != nil {
			return err
		}
	}
	if !now.MutedUntil.Equal(was.MutedUntil) {
		return db.setConnection(ctx, id, muteField, num(optionalTime(now.MutedUntil)), false)
	}
	return nil
}

// setConnection writes one field of a connection's lookup item: a
// moderator's change marks it; $connect's write of what it read is made
// only where no such mark is.
func (db *DB) setConnection(ctx context.Context, id string, f connectionField, v types.AttributeValue, moderator bool) error {
	update, cond := "SET #f = :v", "attribute_exists(pk) AND attribute_not_exists(#m)"
	values := map[string]types.AttributeValue{":v": v}
	if moderator {
		update, cond = "SET #f = :v, #m = :now", "attribute_exists(pk)"
		values[":now"] = num(ms(db.Now()))
	}
	_, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &db.tables.Connections, Key: key(connPrefix+id, lookupSK),
		UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: map[string]string{"#f": f.attr, "#m": f.mark}, ExpressionAttributeValues: values})
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("set %s of connection %s: %w", f.attr, id, err)
	}
	return nil
}

// CreateRoom makes a private room owned by owner (called name), if no
// room of that name exists; else it refuses with not_allowed (the name is
// taken).
func (db *DB) CreateRoom(ctx context.Context, room, owner, name string) error {
	if strings.HasPrefix(room, chat.DMPrefix) {
		return chat.Errorf(chat.CodeNotAllowed, "that name is kept for direct messages")
	}
	items, err := db.ownedRoom(room, owner, name)
	if err != nil {
		return err
	}
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	switch {
	case quotaRefused(err, items):
		return errTooManyRooms
	case cancelledByCondition(err):
		return chat.Errorf(chat.CodeNotAllowed, "a room of that name exists already")
	}
	if err != nil {
		return fmt.Errorf("create room %q for %s: %w", room, owner, err)
	}
	return nil
}

// CreateDM makes the private room of the direct messages between a (who
// asks, called aName) and b (chat.DMRoom), with both as members and no
// owner, if it does not exist yet (else it changes nothing).
func (db *DB) CreateDM(ctx context.Context, room, a, aName, b string) error {
	now := ms(db.Now())
	items := []types.TransactWriteItem{}
	meta, err := marshal(metaItem{keys: keys{roomPrefix + room, metaSK}, CreatedAt: now, DM: true})
	if err != nil {
		return err
	}
	items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &db.tables.Messages, Item: meta, ConditionExpression: aws.String("attribute_not_exists(pk)")}})
	for _, m := range []struct{ id, name, peer, peerName string }{{a, aName, b, ""}, {b, "", a, aName}} {
		access, err := marshal(accessItem{keys: keys{roomPrefix + room, accessPrefix + m.id}, Role: chat.RoleMember, AddedBy: a, AddedAt: now, Name: m.name, Peer: m.peer})
		if err != nil {
			return err
		}
		mine, err := db.putMine(mineItem{keys: keys{minePrefix + m.id, room}, Peer: m.peer, PeerName: m.peerName})
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &db.tables.Messages, Item: access}}, mine)
	}
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err != nil && !cancelledByCondition(err) {
		return fmt.Errorf("create the direct messages of %s and %s: %w", a, b, err)
	}
	if err != nil { // there already: made by the other, and so theirs, or else nobody's
		var m metaItem
		if _, err := db.getItem(ctx, db.tables.Messages, key(roomPrefix+room, metaSK), &m); err != nil {
			return fmt.Errorf("read the direct messages of %s and %s: %w", a, b, err)
		}
		if !m.DM {
			return chat.Errorf(chat.CodeNotAllowed, "these direct messages cannot be opened")
		}
	}
	return nil
}

// Grant makes userID a member (or a moderator: role) of a private room,
// if by is its owner (else not_allowed); a member's role changes to role.
// The owner's role does not change.
func (db *DB) Grant(ctx context.Context, room, by, userID, role string) error {
	mine, err := db.putMine(mineItem{keys: keys{minePrefix + userID, room}})
	if err != nil {
		return err
	}
	// An update, not a put: a member's mute and when they came stay.
	e := chat.AuditEntry{By: by, Action: chat.ActionInvite, UserID: userID, Role: role}
	err = db.byOwner(ctx, room, by, fmt.Sprintf("add %s to room %q as %s", userID, room, role), "the owner of a room stays its owner", e, mine, types.TransactWriteItem{Update: &types.Update{
		TableName: &db.tables.Messages, Key: accessKey(room, userID),
		UpdateExpression:         aws.String("SET #role = :role, addedBy = if_not_exists(addedBy, :by), addedAt = if_not_exists(addedAt, :at)"),
		ConditionExpression:      aws.String("attribute_not_exists(pk) OR #role <> :owner"),
		ExpressionAttributeNames: map[string]string{"#role": "role"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": str(chat.RoleOwner), ":role": str(role), ":by": str(by),
			":at": num(ms(db.Now()))}}})
	if err != nil {
		return err
	}
	// The role reaches the user's open connections (a frame reads it with its connection).
	return db.eachConnection(ctx, room, userID, func(id string) error { return db.roleConnection(ctx, id, role) })
}

// eachConnection calls mark for each of a user's connections in a room.
func (db *DB) eachConnection(ctx context.Context, room, userID string, mark func(id string) error) error {
	ids, err := db.UserConnections(ctx, room, userID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := mark(id); err != nil {
			return err
		}
	}
	return nil
}

// Revoke removes userID from a private room, if by is its owner (else
// not_allowed); the owner cannot be removed, nor a banned user (their ban
// stays). Their access item stays as roleRemoved. The caller closes their
// connections: RemoveConnection of each of UserConnections.
func (db *DB) Revoke(ctx context.Context, room, by, userID string) error {
	mine := types.TransactWriteItem{Delete: &types.Delete{TableName: &db.tables.Messages, Key: mineKey(userID, room)}}
	return db.byOwner(ctx, room, by, fmt.Sprintf("remove %s from room %q", userID, room), "the owner stays the owner, and a ban stays until it is lifted",
		chat.AuditEntry{By: by, Action: chat.ActionRemove, UserID: userID}, mine, types.TransactWriteItem{Update: &types.Update{
			TableName: &db.tables.Messages, Key: accessKey(room, userID),
			UpdateExpression:         aws.String("SET #role = :removed, removedBy = :by, removedAt = :at REMOVE mutedUntil"),
			ConditionExpression:      aws.String("attribute_not_exists(pk) OR NOT #role IN (:owner, :banned)"),
			ExpressionAttributeNames: map[string]string{"#role": "role"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":owner": str(chat.RoleOwner), ":banned": str(chat.RoleBanned),
				":removed": str(roleRemoved), ":by": str(by), ":at": num(ms(db.Now()))},
		}})
}

// byOwner runs the write of a member's item of the room (mine), of their
// access item (write) and of the action's audit entry e in one
// transaction with the check that by owns the room; the access item's
// condition (refused: why it failed) keeps the owner's.
func (db *DB) byOwner(ctx context.Context, room, by, what, refused string, e chat.AuditEntry, mine, write types.TransactWriteItem) error {
	audit, err := db.auditPut(room, e)
	if err != nil {
		return err
	}
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		db.stillHas(room, by, chat.RoleOwner), mine, write, audit,
	}})
	reasons := cancelReasons(err)
	switch {
	case err == nil:
		return nil
	case len(reasons) > 2 && reasonIs(reasons[0], reasonCondition):
		return errNotOwner
	case len(reasons) > 2 && reasonIs(reasons[2], reasonCondition):
		return chat.Errorf(chat.CodeNotAllowed, refused)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// UserConnections returns the ids of a user's connections in a room.
func (db *DB) UserConnections(ctx context.Context, room, userID string) ([]string, error) {
	var p presenceItem
	if _, err := db.getItem(ctx, db.tables.Connections, key(roomPrefix+room, userPrefix+userID), &p); err != nil {
		return nil, fmt.Errorf("get the connections of %s in room %q: %w", userID, room, err)
	}
	return p.Conns, nil
}

// PutAccess stores an access change under the room's next seq, so that
// every member sees it in the room's one order and a client that missed
// it gets it as it gets a message. It returns e with its seq and time.
func (db *DB) PutAccess(ctx context.Context, e chat.AccessEvent) (chat.AccessEvent, error) {
	for range maxSeqTakes {
		seq, err := db.nextSeq(ctx, e.Room)
		if err != nil {
			return e, err
		}
		now := db.Now()
		it := messageItem{keys: keys{roomPrefix + e.Room, msgKey(seq)}, Seq: seq, UserID: e.By, Name: e.ByName, SentAt: ms(now),
			ExpiresAt: now.Add(db.MessageRetention).Unix(), Kind: chat.KindAccess, Action: e.Action, Member: e.UserID, MemberName: e.Name, Role: e.Role, Was: e.Was,
			Token: rand.Text()}
		if e.MutedUntil != "" {
			until, err := time.Parse(chat.TimeFormat, e.MutedUntil)
			if err != nil {
				return e, fmt.Errorf("store the access change of %s in room %q: %w", e.UserID, e.Room, err)
			}
			it.Until = ms(until)
		}
		item, err := marshal(it)
		if err == nil {
			_, err = db.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &db.tables.Messages, Item: item,
				ConditionExpression: aws.String("attribute_not_exists(pk)"), ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
		}
		if ccf, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
			// Ours, from an attempt whose answer was lost and that the SDK
			// retried; else a tombstone a reader wrote: another seq.
			if tok, ok := ccf.Item["token"].(*types.AttributeValueMemberS); !ok || tok.Value != it.Token {
				continue
			}
			err = nil
		}
		if err != nil {
			return e, db.skip(ctx, e.Room, seq, &chat.Stored{}, fmt.Errorf("store the access change of %s in room %q: %w", e.UserID, e.Room, err))
		}
		e.Seq, e.SentAt = seq, chat.FormatTime(now)
		return e, nil
	}
	return e, fmt.Errorf("store the access change of %s in room %q: %d seqs taken were declared skipped before it was stored", e.UserID, e.Room, maxSeqTakes)
}

// emailPrefix starts the sk of an invitation by e-mail: pk room#{room},
// sk email#{address}.
const emailPrefix = "email#"

// EmailInviteDays is how long an invitation by e-mail waits to be
// claimed (its item's TTL).
const EmailInviteDays = 30

// emailItem is an invitation to a private room for whoever signs in with
// a verified address.
type emailItem struct {
	keys
	Role      string `dynamodbav:"role"`
	AddedBy   string `dynamodbav:"addedBy"`
	AddedAt   int64  `dynamodbav:"addedAt"` // Unix ms
	ExpiresAt int64  `dynamodbav:"expiresAt"`
	UsedBy    string `dynamodbav:"usedBy,omitempty"` // the account that claimed it: it is used up
}

// InviteEmail keeps an invitation to a private room, as role, for the
// account that next connects to it having signed in with the verified
// address email (ClaimEmail), if by is its owner (else not_allowed). A
// second invitation of the address replaces the first.
func (db *DB) InviteEmail(ctx context.Context, room, by, email, role string) error {
	now := db.Now()
	item, err := marshal(emailItem{keys: keys{roomPrefix + room, emailPrefix + email}, Role: role, AddedBy: by, AddedAt: ms(now),
		ExpiresAt: now.Add(EmailInviteDays * 24 * time.Hour).Unix()})
	if err != nil {
		return err
	}
	audit, err := db.auditPut(room, chat.AuditEntry{By: by, Action: chat.ActionInvite, Email: email, Role: role})
	if err != nil {
		return err
	}
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		db.stillHas(room, by, chat.RoleOwner),
		{Put: &types.Put{TableName: &db.tables.Messages, Item: item}},
		audit,
	}})
	if cancelledByCondition(err) {
		return errNotOwner
	}
	if err != nil {
		return fmt.Errorf("invite %s to room %q: %w", email, room, err)
	}
	return nil
}

// ClaimEmail makes userID (called name), signed in with the verified
// address email, a member of a private room whose owner invited the
// address, with the role invited; found is false when there is no such
// invitation (or it expired, or was used). The invitation is used up
// (marked, not deleted: the connect function deletes nothing there).
// Someone removed, or whose ban was lifted, before the invitation was
// made comes back (the owner asked for them again); anyone removed or
// banned after it, and anyone banned, does not.
func (db *DB) ClaimEmail(ctx context.Context, room, userID, name, email string) (by, role string, found bool, err error) {
	var inv emailItem
	found, err = db.getItem(ctx, db.tables.Messages, key(roomPrefix+room, emailPrefix+email), &inv)
	if err != nil || !found || inv.ExpiresAt <= db.Now().Unix() || inv.UsedBy != "" {
		return "", "", false, err
	}
	now := ms(db.Now())
	access, err := marshal(accessItem{keys: keys{roomPrefix + room, accessPrefix + userID}, Role: inv.Role, AddedBy: inv.AddedBy, AddedAt: now, Name: name})
	if err != nil {
		return "", "", false, err
	}
	mine, err := db.putMine(mineItem{keys: keys{minePrefix + userID, room}})
	if err != nil {
		return "", "", false, err
	}
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{TableName: &db.tables.Messages, Key: key(roomPrefix+room, emailPrefix+email),
			UpdateExpression: aws.String("SET usedBy = :user"), ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(usedBy) AND addedAt = :invited"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":user": str(userID), ":invited": num(inv.AddedAt)}}},
		{Put: &types.Put{TableName: &db.tables.Messages, Item: access,
			ConditionExpression: aws.String("attribute_not_exists(pk) OR (#role = :removed AND (attribute_not_exists(removedAt) OR removedAt < :invited) AND " +
				"(attribute_not_exists(bannedAt) OR bannedAt < :invited))"),
			ExpressionAttributeNames:  map[string]string{"#role": "role"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":removed": str(roleRemoved), ":invited": num(inv.AddedAt)}}},
		mine,
	}})
	if cancelledByCondition(err) { // claimed meanwhile (another tab), or banned meanwhile
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("claim the invitation of %s to room %q: %w", email, room, err)
	}
	return inv.AddedBy, inv.Role, true, nil
}

// ClaimRoom makes owner (called name) the owner of the public room room,
// if nobody owns it and nothing was ever said there (its head has no
// seq): a room people already use is nobody's to take. claimed is false
// when it was not (no error).
func (db *DB) ClaimRoom(ctx context.Context, room, owner, name string) (claimed bool, err error) {
	items, err := db.ownedRoom(room, owner, name)
	if err != nil {
		return false, err
	}
	items = append([]types.TransactWriteItem{{ConditionCheck: &types.ConditionCheck{TableName: &db.tables.Messages, Key: key(roomPrefix+room, headSK),
		ConditionExpression: aws.String("attribute_not_exists(seq) OR seq = :zero"), ExpressionAttributeValues: map[string]types.AttributeValue{":zero": num(0)}}}},
		items...)
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	switch {
	case quotaRefused(err, items):
		return false, errTooManyRooms
	case cancelledByCondition(err):
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim room %q for %s: %w", room, owner, err)
	}
	return true, nil
}

// ownedRoom is the writes of a room made by owner (called name), for a
// transaction: its meta item and the owner's access item (neither there
// before), the owner's item of it (mine), and, last, one more room in the
// owner's count (countRoom).
func (db *DB) ownedRoom(room, owner, name string) ([]types.TransactWriteItem, error) {
	now := ms(db.Now())
	meta, err := marshal(metaItem{keys: keys{roomPrefix + room, metaSK}, Owner: owner, CreatedAt: now})
	if err != nil {
		return nil, err
	}
	access, err := marshal(accessItem{keys: keys{roomPrefix + room, accessPrefix + owner}, Role: chat.RoleOwner, AddedBy: owner, AddedAt: now, Name: name})
	if err != nil {
		return nil, err
	}
	mine, err := db.putMine(mineItem{keys: keys{minePrefix + owner, room}})
	if err != nil {
		return nil, err
	}
	return []types.TransactWriteItem{
		{Put: &types.Put{TableName: &db.tables.Messages, Item: meta, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: &types.Put{TableName: &db.tables.Messages, Item: access, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		mine, db.countRoom(owner),
	}, nil
}

// errTooManyRooms refuses a room to an account that made chat.MaxRoomsMade.
var errTooManyRooms = chat.Errorf(chat.CodeNotAllowed, fmt.Sprintf("you have made %d rooms, as many as one account may", chat.MaxRoomsMade))

// quotaRefused reports whether the transaction of items, ownedRoom's
// last, was cancelled by the owner's count of rooms (countRoom).
func quotaRefused(err error, items []types.TransactWriteItem) bool {
	reasons := cancelReasons(err)
	return len(reasons) == len(items) && reasonIs(reasons[len(items)-1], reasonCondition)
}

// countRoom is the write, in a room's creation, of one more room made by
// owner (pk quota#{userId}, sk rooms), refused past chat.MaxRoomsMade.
func (db *DB) countRoom(owner string) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{TableName: &db.tables.Messages, Key: key(quotaPrefix+owner, roomsSK),
		UpdateExpression: aws.String("ADD made :one"), ConditionExpression: aws.String("attribute_not_exists(made) OR made < :max"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":max": num(chat.MaxRoomsMade)}}}
}

// Invitations returns a private room's invitations by e-mail not yet used
// nor expired (at most chat.InvitationsPage).
func (db *DB) Invitations(ctx context.Context, room string) ([]chat.Invitation, error) {
	items, err := db.queryItems(ctx, &dynamodb.QueryInput{
		TableName:                 &db.tables.Messages,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :email)"),
		FilterExpression:          aws.String("attribute_not_exists(usedBy) AND #ttl > :now"),
		ExpressionAttributeNames:  map[string]string{"#ttl": TTLAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(roomPrefix + room), ":email": str(emailPrefix), ":now": num(db.Now().Unix())},
		Limit:                     aws.Int32(chat.InvitationsPage),
	}, chat.InvitationsPage, false) // used or expired: filtered here
	var its []emailItem
	if err == nil {
		err = attributevalue.UnmarshalListOfMaps(items, &its)
	}
	if err != nil {
		return nil, fmt.Errorf("read the invitations of room %q: %w", room, err)
	}
	out := make([]chat.Invitation, len(its))
	for i, it := range its {
		out[i] = chat.Invitation{Email: strings.TrimPrefix(it.SK, emailPrefix), Role: it.Role, ExpiresAt: chat.FormatTime(time.Unix(it.ExpiresAt, 0))}
	}
	return out, nil
}

// WithdrawEmail takes back an invitation of email to a private room not
// yet used, if by is its owner (else not_allowed); none is no error.
func (db *DB) WithdrawEmail(ctx context.Context, room, by, email string) error {
	audit, err := db.auditPut(room, chat.AuditEntry{By: by, Action: chat.ActionRemove, Email: email})
	if err != nil {
		return err
	}
	_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		db.stillHas(room, by, chat.RoleOwner),
		{Delete: &types.Delete{TableName: &db.tables.Messages, Key: key(roomPrefix+room, emailPrefix+email)}},
		audit,
	}})
	if cancelledByCondition(err) {
		return errNotOwner
	}
	if err != nil {
		return fmt.Errorf("withdraw the invitation of %s to room %q: %w", email, room, err)
	}
	return nil
}
