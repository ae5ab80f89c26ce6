/*
id: sealtrail-ssh-password-spray
title: SSH logon failures for many accounts from one address
level: medium
status: stable
kind: correlation
tactics: [credential-access]
techniques: [T1110.003]
description: >
  Failed SSH logons for five or more different accounts from one source address within an
  hour (password spraying or user enumeration). The evidence is every failure from that
  address on that host.
false_positives:
  - a jump host shared by several people
author: sealtrail
sources: [syslog, journald]
*/
WITH fails AS (
    SELECT event_uid, ts, host, src_ip,
           count(DISTINCT "user") OVER (PARTITION BY host, src_ip ORDER BY ts
                          RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND CURRENT ROW) AS users
    FROM events
    WHERE event_type = 'logon_failure' AND process = 'sshd' AND src_ip IS NOT NULL
),
sources AS (SELECT DISTINCT host, src_ip FROM fails WHERE users >= 5)
SELECT f.event_uid, f.ts, f.host, NULL::VARCHAR AS user_name, f.src_ip,
       NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM fails f JOIN sources s ON f.host IS NOT DISTINCT FROM s.host AND f.src_ip = s.src_ip
