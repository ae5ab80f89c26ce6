/*
id: sealtrail-ssh-brute-force
title: SSH password brute force from one address
level: high
status: stable
kind: correlation
tactics: [credential-access]
techniques: [T1110.001]
description: >
  Ten or more failed SSH logons (sshd lines of auth logs or the journal) from one source
  address within an hour. The evidence is every failure from that address on that host.
false_positives:
  - a monitoring or CI system with a wrong password or key retrying
  - a user behind a shared NAT address mistyping
author: sealtrail
sources: [syslog, journald]
*/
WITH fails AS (
    SELECT event_uid, ts, host, src_ip,
           count(*) OVER (PARTITION BY host, src_ip ORDER BY ts
                          RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND CURRENT ROW) AS in_hour
    FROM events
    WHERE event_type = 'logon_failure' AND process = 'sshd' AND src_ip IS NOT NULL
),
sources AS (SELECT DISTINCT host, src_ip FROM fails WHERE in_hour >= 10)
SELECT f.event_uid, f.ts, f.host, NULL::VARCHAR AS user_name, f.src_ip,
       NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM fails f JOIN sources s ON f.host IS NOT DISTINCT FROM s.host AND f.src_ip = s.src_ip
