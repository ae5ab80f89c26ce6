/*
id: sealtrail-web-scanner
title: Web vulnerability scan from one address
level: medium
status: stable
kind: correlation
tactics: [reconnaissance]
techniques: [T1595.002, T1595.003]
description: >
  Requests from one address with a scanner's user agent (Nmap, zgrab, sqlmap, Nikto,
  masscan, gobuster, dirbuster, wpscan, Nuclei, feroxbuster, ffuf, WhatWeb), or ten or more
  404 answers to one address within ten minutes. The evidence is all of that address's
  requests on that host, so what the scan found (the 200s) is in it too.
false_positives:
  - the organisation's own vulnerability scanner; broken links followed by a crawler
author: sealtrail
sources: [web_access]
*/
WITH requests AS (
    SELECT event_uid, ts, host, src_ip,
           attributes->>'$.user_agent' AS agent, attributes->>'$.status' AS status
    FROM events WHERE event_type = 'http_request' AND src_ip IS NOT NULL
),
misses AS (
    SELECT host, src_ip,
           count(*) OVER (PARTITION BY host, src_ip ORDER BY ts
                          RANGE BETWEEN INTERVAL 10 MINUTE PRECEDING AND CURRENT ROW) AS n
    FROM requests WHERE status = '404'
),
scanners AS (
    SELECT DISTINCT host, src_ip FROM misses WHERE n >= 10
    UNION
    SELECT DISTINCT host, src_ip FROM requests
    WHERE regexp_matches(agent, '(?i)(nmap|zgrab|sqlmap|nikto|masscan|gobuster|dirbuster|wpscan|nuclei|feroxbuster|ffuf|whatweb)')
)
SELECT r.event_uid, r.ts, r.host, NULL::VARCHAR AS user_name, r.src_ip,
       NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM requests r JOIN scanners s ON r.host IS NOT DISTINCT FROM s.host AND r.src_ip = s.src_ip
