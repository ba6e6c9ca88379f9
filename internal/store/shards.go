package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// A room's connections are spread over shards, each a partition of its
// own, so that a room of 100,000 is read (and fanned out) a shard at a
// time, by as many invocations as it has shards, and no partition serves
// it all. Shard 0 is the room's partition room#{room}; shard k > 0 is
// room#{room}#{k} (room names hold no '#'). The room's count of shards is
// on its presence log head (absent: 1); it doubles when a $connect finds
// the room's users online at ShardSize per shard, up to MaxShards. A
// connection's shard is hash(id) mod the count its $connect read, and is
// kept on its lookup item.
//
// A room that empties gives its shards back: a $connect that finds fewer
// than a quarter of ShardSize per shard online halves the count, as often
// as that holds, for the connections placed from then on, and keeps the
// count it had as the spread, until every connection placed before has
// ended (ConnectionTTL, and a minute for a $connect that read the old
// count late). Readers read every shard below the larger of the two
// (readShards), so a reader that reads the head and then those shards
// finds every connection stored before it read the head.
const MaxShards = 256

// spreadMargin is how long after a count shrank a $connect may still
// place a connection by the count before (its head read is eventually
// consistent): the spread lasts ConnectionTTL and this.
const spreadMargin = time.Minute

// readShards is how many shards a reader of a room with head reads at now.
func (h plogHead) readShards(now time.Time) int {
	n := max(h.Shards, 1)
	if now.UnixMilli() < h.SpreadUntil {
		n = max(n, h.Spread)
	}
	return n
}

// memberPK is the partition of a room's shard.
func memberPK(room string, shard int) string {
	if shard == 0 {
		return roomPrefix + room
	}
	return roomPrefix + room + "#" + strconv.Itoa(shard)
}

// shardOf places a connection among shards.
func shardOf(id string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(shards))
}

// connectShards returns the count of shards a connecting member of room
// is placed among, doubling it first if the room has filled its shards,
// or halving it if it has emptied them, and the room's count online as
// read. The head is read eventually consistent: a count read stale and
// smaller places the connection in a shard readers read all the same;
// one read stale and larger, within the spread of the shrink that made
// it smaller.
func (db *DB) connectShards(ctx context.Context, room string) (shards int, online int64, err error) {
	out, err := db.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &db.tables.Connections, Key: key(plogPrefix+room, headSK),
		ProjectionExpression:     aws.String("#online, shards, spread, spreadUntil"),
		ExpressionAttributeNames: map[string]string{"#online": "online"},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("get the shards of room %q: %w", room, err)
	}
	var head plogHead
	if err := unmarshal(out.Item, &head); err != nil {
		return 0, 0, err
	}
	n := max(head.Shards, 1)
	switch {
	case head.Online >= int64(n*db.ShardSize) && n < MaxShards:
		n, err = db.growShards(ctx, room, n*2)
	case n > 1 && head.Online < int64(n*db.ShardSize/4):
		n, err = db.shrinkShards(ctx, room, head)
	}
	return n, head.Online, err
}

// growShards raises a room's count of shards to n.
func (db *DB) growShards(ctx context.Context, room string, n int) (int, error) {
	_, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &db.tables.Connections, Key: key(plogPrefix+room, headSK),
		UpdateExpression:          aws.String("SET shards = :n"),
		ConditionExpression:       aws.String("attribute_not_exists(shards) OR shards < :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(int64(n))},
	})
	if err != nil && !conditionFailed(err) { // failed condition: another connect grew it at least as far
		return 0, fmt.Errorf("grow the shards of room %q to %d: %w", room, n, err)
	}
	return n, nil
}

// shrinkShards halves a room's count of shards (head's) while its users
// online are under a quarter of ShardSize per shard, and spreads readers
// over the count before until its connections have ended. The write is
// conditional on the count read and on not narrowing a spread still
// running: a connect that loses places its connection by the count it
// read, within what readers read.
func (db *DB) shrinkShards(ctx context.Context, room string, head plogHead) (int, error) {
	n, m := head.Shards, head.Shards
	for m > 1 && head.Online < int64(m*db.ShardSize/4) {
		m /= 2
	}
	now := db.Now()
	spread := head.readShards(now)
	_, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &db.tables.Connections, Key: key(plogPrefix+room, headSK),
		UpdateExpression:    aws.String("SET shards = :m, spread = :spread, spreadUntil = :until"),
		ConditionExpression: aws.String("shards = :n AND (attribute_not_exists(spreadUntil) OR spreadUntil <= :now OR spread <= :spread)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":m": num(int64(m)), ":n": num(int64(n)), ":spread": num(int64(spread)),
			":until": num(now.Add(db.ConnectionTTL + spreadMargin).UnixMilli()), ":now": num(now.UnixMilli())},
	})
	if conditionFailed(err) {
		return n, nil
	}
	if err != nil {
		return 0, fmt.Errorf("shrink the shards of room %q to %d: %w", room, m, err)
	}
	return m, nil
}

// ShardConnections returns the live connections of one shard of a room,
// with what a broadcast needs: its id and when it connected. It is a
// strongly consistent Query, so a connection stored before the call is
// included.
func (db *DB) ShardConnections(ctx context.Context, room string, shard int) ([]chat.Connection, error) {
	items, err := db.query(ctx, &dynamodb.QueryInput{
		TableName:                 &db.tables.Connections,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		ProjectionExpression:      aws.String("sk, connectedAt"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(memberPK(room, shard)), ":prefix": str(connPrefix)},
	}, 0)
	if err != nil {
		return nil, fmt.Errorf("query shard %d of room %q: %w", shard, room, err)
	}
	return members(room, shard, items)
}

// RoomConnections returns every live connection in a room of shards
// shards (as its PresenceHead, strongly consistent, said): its shards read
// at once.
func (db *DB) RoomConnections(ctx context.Context, room string, shards int) ([]chat.Connection, error) {
	return db.shardsConnections(ctx, room, 0, shards)
}

// shardsConnections reads shards from..to-1 of a room, a few at a time.
func (db *DB) shardsConnections(ctx context.Context, room string, from, to int) ([]chat.Connection, error) {
	if to-from == 1 {
		return db.ShardConnections(ctx, room, from)
	}
	found := make([][]chat.Connection, to-from)
	var g errgroup.Group
	g.SetLimit(16)
	for k := from; k < to; k++ {
		g.Go(func() (err error) {
			found[k-from], err = db.ShardConnections(ctx, room, k)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var conns []chat.Connection
	for _, f := range found {
		conns = append(conns, f...)
	}
	return conns, nil
}
