 B#encoder_k.0.features.5.running_meanJ€ò1C¾ªrx=b‹p<Ê;Z¾µ®{>Q;+>B¥=DGƒ>PÉ=Â4ò½Žpã¼„áO½è`>ïªi¼Ðrç=ˆuN¾˜Y¹<Ý$
¾BA¾*Z¾ÜJ¦½xŠƒ>Äž}½BÌ²½|-)¾3C;=ØïC¾¬_">ZŠ¾ºƒ¡¼X½–¾¯7í¼