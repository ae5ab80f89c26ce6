/*
id: sealtrail-windows-brute-force
title: Windows logon brute force (RDP, SMB) from one address
level: high
status: stable
kind: correlation
tactics: [credential-access]
techniques: [T1110.001, T1110.003]
description: >
  Ten or more failed logons (Security 4625) from one source address within an hour, over
  the network or RDP. The evidence is every failure from that address on that host, with
  any successful logon (4624) from it in the same period.
false_positives:
  - a service with a stale password; a user behind a shared address
author: sealtrail
needs: [[Security, 4625], [Security, 4624]]
*/
WITH fails AS (
    SELECT event_uid, ts, host, src_ip,
           count(*) OVER (PARTITION BY host, src_ip ORDER BY ts
                          RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND CURRENT ROW) AS in_hour
    FROM events
    WHERE channel = 'Security' AND event_id = 4625 AND src_ip IS NOT NULL
      AND src_ip NOT IN ('-', '127.0.0.1', '::1')
),
sources AS (SELECT host, src_ip, min(ts) AS since, max(ts) AS until FROM fails
            WHERE src_ip IN (SELECT src_ip FROM fails WHERE in_hour >= 10) GROUP BY ALL)
SELECT f.event_uid, f.ts, f.host, NULL::VARCHAR AS user_name, f.src_ip,
       NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM fails f JOIN sources s ON f.host IS NOT DISTINCT FROM s.host AND f.src_ip = s.src_ip
UNION ALL
SELECT e.event_uid, e.ts, e.host, NULL, e.src_ip, NULL, NULL, NULL, NULL
FROM events e JOIN sources s ON e.host IS NOT DISTINCT FROM s.host AND e.src_ip = s.src_ip
WHERE e.channel = 'Security' AND e.event_id = 4624
  AND e.ts BETWEEN s.since AND s.until + INTERVAL 1 HOUR
