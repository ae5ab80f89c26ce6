/*
id: sealtrail-logon-new-source
title: First logon of an account from a new address
level: medium
status: stable
kind: correlation
tactics: [initial-access]
techniques: [T1078]
description: >
  An account logs on over SSH from an address it never logged on from before, after
  earlier logons from other addresses in the case's logs. The first logon of each account
  in the logs sets its baseline and is not reported. The evidence is every logon of the
  account from the new address.
false_positives:
  - a user travelling, a new office or VPN address, a changed CI runner
author: sealtrail
sources: [syslog, journald]
*/
WITH logons AS (
    SELECT event_uid, ts, host, "user", src_ip FROM events
    WHERE event_type = 'logon_success' AND process = 'sshd' AND src_ip IS NOT NULL
      AND "user" IS NOT NULL
),
firsts AS (
    SELECT host, "user", src_ip, min(ts) AS first_ts FROM logons GROUP BY ALL
),
baseline AS (
    SELECT host, "user", min(ts) AS account_first FROM logons GROUP BY ALL
),
new_sources AS (
    SELECT f.host, f."user", f.src_ip FROM firsts f JOIN baseline b
        ON f.host IS NOT DISTINCT FROM b.host AND f."user" = b."user"
    WHERE f.first_ts > b.account_first
)
SELECT l.event_uid, l.ts, l.host, l."user" AS user_name, l.src_ip, NULL::VARCHAR AS group_key,
       NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM logons l JOIN new_sources n ON l.host IS NOT DISTINCT FROM n.host
     AND l."user" = n."user" AND l.src_ip = n.src_ip
