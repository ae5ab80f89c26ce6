/*
id: sealtrail-privilege-after-brute-force
title: sudo or su by an account just taken over by brute force
level: critical
status: stable
kind: correlation
tactics: [privilege-escalation]
techniques: [T1548.003, T1078]
description: >
  sudo or su (attempted or done) by an account within 24 hours after an SSH logon to that
  account from an address that had ten or more failed SSH logons in the hour before (view
  ssh_brute_force_logons). The evidence is the logon and each sudo or su.
false_positives:
  - the account's owner working after regaining access; confirm with the address
author: sealtrail
sources: [syslog, journald]
*/
WITH priv AS (
    SELECT event_uid, ts, host, "user" FROM events
    WHERE event_type = 'privilege_use' AND process IN ('sudo', 'su')
)
SELECT DISTINCT p.event_uid, p.ts, p.host, p."user" AS user_name, t.src_ip,
       NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM priv p JOIN ssh_brute_force_logons t ON p.host IS NOT DISTINCT FROM t.host
     AND p."user" = t."user" AND p.ts BETWEEN t.ts AND t.ts + INTERVAL 24 HOUR
UNION
SELECT t.event_uid, t.ts, t.host, t."user", t.src_ip, NULL, NULL, NULL, NULL
FROM ssh_brute_force_logons t WHERE EXISTS (SELECT 1 FROM priv p
     WHERE p.host IS NOT DISTINCT FROM t.host AND p."user" = t."user"
     AND p.ts BETWEEN t.ts AND t.ts + INTERVAL 24 HOUR)
