from twisted.application.service import ServiceMaker

gossipdht = ServiceMaker("gossipdht", "gossipdht.node.tap", "A distributed hash table over RESTful HTTP.", "gossipdht")
