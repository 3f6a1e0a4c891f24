package etcdapi_test

import (
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// etcdctl 3.5+ lists the alarms in `endpoint health`: configd raises none.
func TestEtcdAlarmsListNoneAndRaiseIsRefused(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	al, err := cli.AlarmList(ctx)
	if err != nil || len(al.Alarms) != 0 || al.Header.Revision != 1 || al.Header.MemberId == 0 {
		t.Fatalf("alarm list: %+v %v, want no alarms at revision 1", al, err)
	}
	dis, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: al.Header.MemberId, Alarm: pb.AlarmType_NOSPACE})
	if err != nil || len(dis.Alarms) != 0 {
		t.Fatalf("alarm disarm: %+v %v, want nothing disarmed", dis, err)
	}
	_, err = pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE,
		MemberID: al.Header.MemberId, Alarm: pb.AlarmType_NOSPACE})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "Alarm ACTIVATE") {
		t.Fatalf("alarm activate: %v, want Unimplemented naming Alarm ACTIVATE", err)
	}
}
