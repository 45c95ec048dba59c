#!/bin/bash
ip4=`hostname -I`
while true
do
  msgText="Message sent from $ip4 on `date`"
  echo "********  Sending $msgText"
  curl -X POST -H "Content-Type: text/plain" -s -d "$msgText" $RELAY_URL
  echo
  sleep 5
done
