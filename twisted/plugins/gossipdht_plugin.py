from twisted.application.service import ServiceMaker

gossipdht = ServiceMaker("gossipdht", "gossipdht.tap", "A distributed hash table over RESTful HTTP.", "gossipdht")
